"""dns reader: parse queries and answers, match them by (pid, fd, DNS id), time the rest out."""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter, defaultdict
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    c_string,
    clip,
    comm_text,
    endpoint,
    fmt_ms,
    latency_from_values,
    plural,
    raw_field,
    top_entries,
)
from probes.models import Aggregates, TopEntry

EV_QUERY, EV_ANSWER, EV_GAI = 1, 2, 3
SLOW_MS = 500  # an answer (or a wait) this long is a slow lookup, whatever the answer
IN_FLIGHT_MS = 1000  # a query younger than this at the end is in flight, not unanswered
TOP_FAILED = 3
TOP_SLOW = 3
QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    65: "HTTPS",
    255: "ANY",
}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
EAI = {
    -2: "EAI_NONAME",
    -3: "EAI_AGAIN",
    -4: "EAI_FAIL",
    -5: "EAI_NODATA",
    -8: "EAI_SERVICE",
    -10: "EAI_MEMORY",
    -11: "EAI_SYSTEM",
}


class DnsPacket(BaseModel):
    id: int
    is_answer: bool
    rcode: int
    name: str
    qtype: str


def parse_dns(data: bytes) -> DnsPacket | None:
    """Header and first question of a DNS message (None when it is not one)."""
    if len(data) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", data[:6])
    if qdcount < 1:
        return None
    labels = []
    pos = 12
    while pos < len(data):
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length > 63 or pos + 1 + length > len(data):
            return None
        labels.append(data[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    else:
        return None
    qtype = struct.unpack("!H", data[pos : pos + 2])[0] if pos + 2 <= len(data) else 0
    return DnsPacket(
        id=ident,
        is_answer=bool(flags & 0x8000),
        rcode=flags & 0xF,
        name=clip(".".join(labels) or ".", 64),
        qtype=QTYPES.get(qtype, str(qtype)),
    )


class _Pending(BaseModel):
    ts: int
    pid: int
    comm: str
    server: str
    name: str
    qtype: str


class _Who(BaseModel, frozen=True):
    """Who asked which server: the key of the failed and slow answers."""

    server: str
    comm: str
    pid: int

    def text(self) -> str:
        return f"{self.server} to {self.comm} (pid {self.pid})"


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=3, per_kind=1)
        self.pending: dict[tuple[int, int, int], _Pending] = {}
        self.queries = 0
        self.answered = 0
        self.latencies: list[int] = []
        self.by_name: Counter[str] = Counter()
        self.by_server: Counter[str] = Counter()
        self.by_proc: Counter[str] = Counter()
        self.rcodes: Counter[str] = Counter()
        self.gai_calls = 0
        self.gai_lat: list[int] = []
        self.gai_fail: Counter[str] = Counter()
        self.unparsed = 0
        # answers that are errors (NXDOMAIN, SERVFAIL...): (who, name, type, rcode) -> count
        self.failed: Counter[tuple[_Who, str, str, str]] = Counter()
        # slow answers per asker: latencies (ns) and the names asked
        self.slow: defaultdict[_Who, list[int]] = defaultdict(list)
        self.slow_names: defaultdict[_Who, Counter[str]] = defaultdict(Counter)

    def on_event(self, ring: str, event: Any) -> None:
        kind = int(event.kind)
        pid = int(event.pid)
        comm = comm_text(event.comm)
        ts = int(event.ts)
        if kind == EV_GAI:
            self._on_gai(event, pid, comm, ts)
            return
        family = socket.AF_INET6 if int(event.family) == 10 else socket.AF_INET
        server = endpoint(family, raw_field(event, "addr"), int(event.port))
        packet = parse_dns(raw_field(event, "data")[: int(event.len)])
        if packet is None:
            self.unparsed += 1
            return
        key = (pid, int(event.fd), packet.id)
        if kind == EV_QUERY and not packet.is_answer:
            self.queries += 1
            self.pending[key] = _Pending(
                ts=ts, pid=pid, comm=comm, server=server, name=packet.name, qtype=packet.qtype
            )
            self.by_name[f"{packet.name} {packet.qtype}"] += 1
            self.by_server[server] += 1
            self.by_proc[f"{comm} (pid {pid})"] += 1
            data: dict[str, str | float] = {
                "server": server,
                "name": packet.name,
                "type": packet.qtype,
            }
            event_type = "dns_query"
        elif kind == EV_ANSWER and packet.is_answer:
            query = self.pending.pop(key, None)
            rcode = RCODES.get(packet.rcode, str(packet.rcode))
            self.rcodes[rcode] += 1
            data = {
                "server": server,
                "name": packet.name,
                "type": packet.qtype,
                "rcode": rcode,
            }
            who = _Who(server=server, comm=comm, pid=pid)
            if rcode != "NOERROR":
                self.failed[(who, packet.name, packet.qtype, rcode)] += 1
            if query is not None:
                self.answered += 1
                self.latencies.append(ts - query.ts)
                data["latency_ms"] = round((ts - query.ts) / 1e6, 3)
                if ts - query.ts >= SLOW_MS * 1_000_000:
                    self.slow[who].append(ts - query.ts)
                    self.slow_names[who][f"{packet.name} {packet.qtype}"] += 1
            event_type = "dns_answer"
        else:
            return
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(ts),
                process_id=pid,
                process_name=comm,
                event_type=event_type,
                data=data,
            )
        )

    def _on_gai(self, event: Any, pid: int, comm: str, ts: int) -> None:
        self.gai_calls += 1
        lat = int(event.lat_ns)
        self.gai_lat.append(lat)
        name = c_string(raw_field(event, "data"), 64)
        ret = int(event.ret)
        result = "ok" if ret == 0 else EAI.get(ret, f"error {ret}")
        if ret != 0:
            self.gai_fail[f"{result} {name} by {comm} (pid {pid})"] += 1
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(ts),
                process_id=pid,
                process_name=comm,
                event_type="getaddrinfo",
                data={"name": name, "result": result, "latency_ms": round(lat / 1e6, 3)},
            )
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        now = time.monotonic_ns()
        unanswered: Counter[str] = Counter()
        ages: list[int] = []
        waiting: defaultdict[_Who, list[int]] = defaultdict(list)
        in_flight = 0
        waited_ms: dict[str, float] = {}
        for query in self.pending.values():
            if now - query.ts < IN_FLIGHT_MS * 1_000_000:
                in_flight += 1  # sent just before the end: its answer may be on its way
                continue
            asked = (
                f"{query.name} {query.qtype} to {query.server} by {query.comm} (pid {query.pid})"
            )
            unanswered[asked] += 1
            waited_ms[asked] = max(waited_ms.get(asked, 0.0), (now - query.ts) / 1e6)
            ages.append(now - query.ts)
            waiting[_Who(server=query.server, comm=query.comm, pid=query.pid)].append(
                now - query.ts
            )
        latency = latency_from_values(self.latencies, base_unit="ns", unit="ms")
        gai = latency_from_values(self.gai_lat, base_unit="ns", unit="ms")
        text = (
            f"{plural(self.queries, 'DNS query', 'DNS queries')} in {elapsed_s:.1f}s, "
            f"{self.answered} answered, {len(self.pending) - in_flight} unanswered"
            + (f", {in_flight} in flight" if in_flight else "")
        )
        parts = []
        if unanswered:
            what, count = unanswered.most_common(1)[0]
            oldest = max(ages) if ages else 0
            parts.append(f"{count} unanswered {what} (waited up to {fmt_ms(oldest)})")
        elif self.by_name:
            parts.append(f"top {self.by_name.most_common(1)[0][0]}")
        bad = {k: v for k, v in self.rcodes.items() if k != "NOERROR"}
        if bad:
            parts.append(", ".join(f"{v} {k}" for k, v in bad.items()))
        if latency.count:
            parts.append(f"p99 latency {fmt_ms((latency.p99 or 0) * 1e6)}")
        slow = self._slow_rows(waiting)
        if slow:
            parts.append(f"slow answers: {slow[0].key}")
        if self.gai_calls:
            gai_text = (
                f"{plural(self.gai_calls, 'getaddrinfo call')} p99 {fmt_ms((gai.p99 or 0) * 1e6)}"
            )
            if self.gai_fail:
                gai_text += f" ({sum(self.gai_fail.values())} failed)"
            parts.append(gai_text)
        if parts:
            text += ": " + "; ".join(parts)
        latencies = {}
        if latency.count:
            latencies["dns"] = latency
        if gai.count:
            latencies["getaddrinfo"] = gai
        return ReaderOutput(
            event_count=self.queries + self.answered + self.gai_calls,
            events=self.samples.dumps(),
            summary=text,
            aggregates=Aggregates(
                totals={
                    "queries": self.queries,
                    "answered": self.answered,
                    "unanswered": len(self.pending) - in_flight,
                    "in_flight": in_flight,
                    "getaddrinfo": self.gai_calls,
                    "not_dns": self.unparsed,
                    **{f"rcode_{k}": v for k, v in self.rcodes.items()},
                },
                top={
                    "unanswered": top_entries(unanswered, limit=3, values=waited_ms),
                    "names": top_entries(self.by_name, limit=3),
                    "servers": top_entries(self.by_server, limit=3),
                    "processes": top_entries(self.by_proc, limit=3),
                    "getaddrinfo_failures": top_entries(self.gai_fail, limit=3),
                    "failed": self._failed_rows(),
                    "slow": slow,
                },
                latency=latencies,
            ),
        )

    def _failed_rows(self) -> list[TopEntry]:
        """Error answers (NXDOMAIN, SERVFAIL, REFUSED...) by asker, name and rcode."""
        ranked = sorted(self.failed.items(), key=lambda item: (-item[1], item[0][0].text()))
        return [
            TopEntry(
                key=f"{rcode} for {name} {qtype} from {who.text()}",
                count=count,
                labels={
                    "rcode": rcode,
                    "name": name,
                    "type": qtype,
                    "server": who.server,
                    "comm": who.comm,
                    "pid": who.pid,
                },
            )
            for (who, name, qtype, rcode), count in ranked[:TOP_FAILED]
        ]

    def _slow_rows(self, waiting: dict[_Who, list[int]]) -> list[TopEntry]:
        """Askers whose answers took >= SLOW_MS (or who still wait that long at the end):
        count, the slowest in ms, the names asked."""
        rows = []
        for who in {*self.slow, *waiting}:
            answered = self.slow.get(who, [])
            waited = [age for age in waiting.get(who, []) if age >= SLOW_MS * 1_000_000]
            if not answered:
                continue  # nothing answered slowly: unanswered queries are timeouts, not slowness
            names = self.slow_names[who].most_common(1)
            rows.append(
                TopEntry(
                    key=f"answers from {who.text()} took up to {fmt_ms(max(answered))}",
                    count=len(answered) + len(waited),
                    value=round(max(answered) / 1e6, 1),
                    labels={
                        "server": who.server,
                        "comm": who.comm,
                        "pid": who.pid,
                        "answered_slowly": len(answered),
                        "still_waiting": len(waited),
                        "name": names[0][0] if names else "",
                    },
                )
            )
        rows.sort(key=lambda row: (-(row.value or 0), row.key))
        return rows[:TOP_SLOW]
