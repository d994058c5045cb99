"""Generic tracepoint reader: total, rate and the top processes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import comm_text, plural, proc_label, top_entries
from probes.models import Aggregates


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        tracepoint = str(self.run.params.get("tracepoint", "?"))
        total = sum(int(v.value) for v in bpf["total"].values())
        by_proc: Counter[str] = Counter()
        labels: dict[str, dict[str, str | int | float]] = {}
        for key, value in bpf["counts"].items():
            label = proc_label(comm_text(key.comm), int(key.pid))
            by_proc[label] += int(value.value)
            labels[label] = {"pid": int(key.pid), "comm": comm_text(key.comm)}
        rate = total / elapsed_s if elapsed_s > 0 else 0.0
        text = f"{plural(total, tracepoint + ' event')} in {elapsed_s:.1f}s ({rate:.0f}/s)"
        if by_proc:
            top, count = by_proc.most_common(1)[0]
            share = 100.0 * count / total if total else 0.0
            text += f": top {top} with {count} ({share:.0f}%)"
            if len(by_proc) > 1:
                text += f", {len(by_proc)} processes in all"
        return ReaderOutput(
            event_count=total,
            summary=text,
            aggregates=Aggregates(
                totals={"events": total, "per_second": round(rate, 1), "processes": len(by_proc)},
                top={"processes": top_entries(by_proc, labels=labels)},
            ),
        )
