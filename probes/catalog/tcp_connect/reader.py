"""tcp_connect reader: in-kernel outcome counts -> totals, top destinations/processes, latency."""

from __future__ import annotations

import errno
import time
from collections import Counter, defaultdict
from typing import Any, ClassVar

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    comm_text,
    endpoint,
    fmt_ms,
    latency_from_log2,
    log2_buckets,
    plural,
    proc_label,
    top_entries,
)
from probes.models import Aggregates

OUTCOMES = ("established", "refused", "timeout", "error")


def _outcome_name(outcome: int, err: int) -> str:
    name = OUTCOMES[outcome] if 0 <= outcome < len(OUTCOMES) else "other"
    if name == "error":
        return errno.errorcode.get(err, f"errno {err}")
    return name


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples()

    def on_event(self, ring: str, event: Any) -> None:
        outcome = _outcome_name(int(event.outcome), int(event.err))
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=int(event.pid),
                process_name=comm_text(event.comm),
                event_type="tcp_connect",
                data={
                    "destination": endpoint(int(event.family), event.daddr, int(event.dport)),
                    "outcome": outcome,
                    "latency_ms": round(int(event.lat_ns) / 1e6, 3),
                },
            ),
            kind=outcome,
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        by_outcome: Counter[str] = Counter()
        by_dest: Counter[str] = Counter()
        by_proc: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        fail_lat: defaultdict[str, float] = defaultdict(float)
        dest_labels: defaultdict[str, Counter[str]] = defaultdict(Counter)
        proc_labels: defaultdict[str, Counter[str]] = defaultdict(Counter)
        failure_labels: dict[str, dict[str, str | int | float]] = {}
        fail_pids: defaultdict[str, Counter[int]] = defaultdict(Counter)
        max_lat_ns = 0
        for key, val in bpf["outcomes"].items():
            count = int(val.count)
            outcome = _outcome_name(int(key.outcome), int(key.err))
            dest = endpoint(int(key.family), key.daddr, int(key.dport))
            proc = proc_label(comm_text(key.comm), int(key.pid))
            by_outcome["error" if int(key.outcome) == 3 else outcome] += count
            by_dest[dest] += count
            by_proc[proc] += count
            dest_labels[dest][outcome] += count
            proc_labels[proc][outcome] += count
            if outcome != "established":
                # grouped by command, not pid: a retry loop of short-lived processes is one culprit
                failure = f"{outcome} {dest} by {comm_text(key.comm)}"
                failures[failure] += count
                fail_lat[failure] += int(val.lat_sum_ns) / 1e6
                fail_pids[failure][int(key.pid)] += count
                failure_labels[failure] = {
                    "outcome": outcome,
                    "destination": dest,
                    "comm": comm_text(key.comm),
                }
            if int(key.outcome) != 3:
                max_lat_ns = max(max_lat_ns, int(val.lat_max_ns))
        failures, fail_lat, failure_labels = _name_processes(
            failures, fail_lat, failure_labels, fail_pids
        )
        pending, oldest_ns = _pending(bpf)
        total = sum(by_outcome.values())
        latency = latency_from_log2(
            log2_buckets(bpf["latency"]), base_unit="ns", unit="ms", max_value=max_lat_ns or None
        )
        mean_fail_ms = {k: fail_lat[k] / failures[k] for k in failures}
        aggregates = Aggregates(
            totals={
                "attempts": total,
                **{o: by_outcome.get(o, 0) for o in OUTCOMES},
                "pending": sum(pending.values()),
            },
            top={
                "pending": top_entries(pending, limit=3),
                "failures": top_entries(failures, values=mean_fail_ms, labels=failure_labels),
                "destinations": top_entries(
                    by_dest, labels={k: dict(v) for k, v in dest_labels.items()}
                ),
                "processes": top_entries(
                    by_proc, labels={k: dict(v) for k, v in proc_labels.items()}
                ),
            },
            latency={"connect": latency} if latency.count else {},
        )
        return ReaderOutput(
            event_count=total,
            events=self.samples.dumps(),
            summary=_summary(total, elapsed_s, by_outcome, failures, by_dest, by_proc, latency.p99)
            + _pending_text(pending, oldest_ns),
            aggregates=aggregates,
        )


def _pending(bpf: Any) -> tuple[Counter[str], int]:
    """Attempts still waiting in SYN_SENT at the end, by destination and process; oldest age."""
    now = time.monotonic_ns()
    pending: Counter[str] = Counter()
    oldest = 0
    for _sk, start in bpf["starts"].items():
        dest = endpoint(int(start.family), start.daddr, int(start.dport))
        pending[f"{dest} by {proc_label(comm_text(start.comm), int(start.pid))}"] += 1
        oldest = max(oldest, now - int(start.ts))
    return pending, oldest


def _pending_text(pending: Counter[str], oldest_ns: int) -> str:
    if not pending:
        return ""
    what, count = min(pending.items(), key=lambda kv: (-kv[1], kv[0]))
    return (
        f"; {sum(pending.values())} still waiting for an answer ({count} to {what}), "
        f"oldest {fmt_ms(oldest_ns)}"
    )


def _name_processes(
    failures: Counter[str],
    fail_lat: defaultdict[str, float],
    labels: dict[str, dict[str, str | int | float]],
    pids: defaultdict[str, Counter[int]],
) -> tuple[Counter[str], defaultdict[str, float], dict[str, dict[str, str | int | float]]]:
    """`... by curl` -> `... by curl (pid 42)`, or `(3 processes, top pid 42)`."""
    named: Counter[str] = Counter()
    named_lat: defaultdict[str, float] = defaultdict(float)
    named_labels: dict[str, dict[str, str | int | float]] = {}
    for key, count in failures.items():
        top_pid = pids[key].most_common(1)[0][0]
        if len(pids[key]) == 1:
            name = f"{key} (pid {top_pid})"
        else:
            name = f"{key} ({len(pids[key])} processes, top pid {top_pid})"
        named[name] = count
        named_lat[name] = fail_lat[key]
        named_labels[name] = {**labels[key], "pid": top_pid, "processes": len(pids[key])}
    return named, named_lat, named_labels


def _summary(
    total: int,
    elapsed_s: float,
    by_outcome: Counter[str],
    failures: Counter[str],
    by_dest: Counter[str],
    by_proc: Counter[str],
    p99_ms: float | None,
) -> str:
    head = f"{plural(total, 'connect')} in {elapsed_s:.1f}s"
    if not total:
        return f"{head}: no TCP connect attempt completed"
    parts = []
    if failures:
        culprit, count = failures.most_common(1)[0]
        outcome, _, rest = culprit.partition(" ")
        dest, _, proc = rest.partition(" by ")
        parts.append(f"{count} {outcome} to {dest} by {proc}")
        others = sum(failures.values()) - count
        if others:
            parts.append(f"{others} other failures")
    established = by_outcome.get("established", 0)
    if established:
        top_dest = by_dest.most_common(1)[0][0] if not failures else ""
        parts.append(f"{established} established" + (f" (top {top_dest})" if top_dest else ""))
    if not failures and by_proc:
        parts.append(f"mostly by {by_proc.most_common(1)[0][0]}")
    text = f"{head}: " + ", ".join(parts)
    if p99_ms is not None:
        text += f", p99 latency {fmt_ms(p99_ms * 1e6)}"
    return text
