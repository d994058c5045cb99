"""tcp_retransmits reader: totals by kind, the endpoints that matter, top connections."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import SampleEvent, Samples, comm_text, endpoint, plural, top_entries
from probes.models import Aggregates

KINDS = {1: "retransmit", 2: "reset_sent", 3: "reset_received"}
STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV",
}  # fmt: skip
_WHAT = {
    "retransmit": "retransmits to",
    "reset_sent": "resets sent for",
    "reset_received": "resets received from",
}


def _describe(key: Any) -> tuple[str, dict[str, Any]]:
    kind = KINDS.get(int(key.kind), "other")
    family = int(key.family)
    local = endpoint(family, bytes(key.saddr), int(key.sport))
    remote = endpoint(family, bytes(key.daddr), int(key.dport))
    state = STATES.get(int(key.state), "-")
    pid = int(key.pid)
    owner = f"{comm_text(key.comm)} (pid {pid})" if pid else "?"
    # a reset we send comes from our side (the refusing port); the rest concern the peer
    service = local if kind == "reset_sent" else remote
    data = {
        "kind": kind, "local": local, "remote": remote, "state": state, "owner": owner,
        "endpoint": service,
    }  # fmt: skip
    return f"{kind} {local} -> {remote} [{state}] owner {owner}", data


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=4, per_kind=2)

    def on_event(self, ring: str, event: Any) -> None:
        _, data = _describe(event)
        data.pop("endpoint")
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=int(event.pid),
                process_name=comm_text(event.comm),
                event_type=data["kind"],
                data=data,
            )
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        totals = dict.fromkeys(KINDS.values(), 0)
        for key, value in bpf["totals"].items():
            if int(key.value) in KINDS:
                totals[KINDS[int(key.value)]] = int(value.value)
        rows: Counter[str] = Counter()
        peers: Counter[str] = Counter()
        owners: dict[str, Counter[str]] = {}
        for key, value in bpf["counts"].items():
            label, data = _describe(key)
            count = int(value.value)
            rows[label] += count
            peer = f"{_WHAT[data['kind']]} {data['endpoint']}"
            peers[peer] += count
            owners.setdefault(peer, Counter())[data["owner"]] += count
        labels: dict[str, dict[str, str | int | float]] = {}
        for peer, by_owner in owners.items():
            known = [o for o in by_owner if o != "?"]
            labels[peer] = {"owner": max(known, key=by_owner.__getitem__) if known else "?"}
        text = (
            f"{plural(totals['retransmit'], 'retransmit')}, {totals['reset_sent']} resets sent, "
            f"{totals['reset_received']} received in {elapsed_s:.1f}s"
        )
        if peers:
            top, count = min(peers.items(), key=lambda kv: (-kv[1], kv[0]))
            text += f": {count} {top}"
            if labels[top]["owner"] != "?":
                text += f" (owner {labels[top]['owner']})"
        return ReaderOutput(
            event_count=sum(totals.values()),
            events=self.samples.dumps(),
            summary=text,
            aggregates=Aggregates(
                totals=dict(totals),
                top={
                    "endpoints": top_entries(peers, limit=4, labels=labels),
                    "connections": top_entries(rows, limit=3),
                },
            ),
        )
