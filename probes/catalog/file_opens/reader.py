"""file_opens reader: failures first, by (path, errno, process); then the busiest paths."""

from __future__ import annotations

import errno
import os
import time
from collections import Counter, defaultdict
from typing import Any

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    c_string,
    clip,
    comm_text,
    plural,
    proc_label,
    top_entries,
)
from probes.models import Aggregates

_ACCESS = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
_FLAG_NAMES = [
    (os.O_CREAT, "O_CREAT"),
    (os.O_EXCL, "O_EXCL"),
    (os.O_TRUNC, "O_TRUNC"),
    (os.O_APPEND, "O_APPEND"),
    (os.O_NONBLOCK, "O_NONBLOCK"),
    (os.O_DIRECTORY, "O_DIRECTORY"),
    (os.O_CLOEXEC, "O_CLOEXEC"),
    (getattr(os, "O_DIRECT", 0), "O_DIRECT"),
]


def flag_names(flags: int) -> str:
    names = [_ACCESS.get(flags & 3, "O_ACCMODE?")]
    names += [name for bit, name in _FLAG_NAMES if bit and flags & bit]
    return "|".join(names)


def errno_name(err: int) -> str:
    return "OK" if err == 0 else errno.errorcode.get(err, f"errno {err}")


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        totals = [int(v.value) for v in bpf["totals"].values()]
        opens, failures = [*totals, 0, 0][:2]
        failed: Counter[str] = Counter()
        paths: Counter[str] = Counter()
        by_errno: Counter[str] = Counter()
        labels: dict[str, dict[str, str | int | float]] = {}
        procs: defaultdict[str, Counter[str]] = defaultdict(Counter)
        samples = Samples(limit=3, per_kind=2)
        read_at = time.time_ns()
        rows = sorted(bpf["opens"].items(), key=lambda kv: -int(kv[1].count))
        for key, val in rows:
            count = int(val.count)
            path = clip(c_string(key.path), 96)
            err = errno_name(int(key.err))
            proc = proc_label(comm_text(key.comm), int(key.pid))
            row: dict[str, str | int] = {
                "path": path,
                "errno": err,
                "flags": flag_names(int(val.flags)),
                "pid": int(key.pid),
                "comm": comm_text(key.comm),
            }
            if int(key.err):
                label = f"{err} {path}"
                failed[label] += count
                by_errno[err] += count
                procs[label][proc] += count
                labels.setdefault(label, {"path": path, "errno": err, "flags": row["flags"]})
            paths[path] += count
            samples.offer(
                SampleEvent(
                    timestamp=read_at,  # aggregated rows: when the count was read
                    process_id=int(key.pid),
                    process_name=comm_text(key.comm),
                    event_type="open_failed" if int(key.err) else "open",
                    data={**row, "count": count},
                )
            )
        for label, by_proc in procs.items():
            top_proc, _ = by_proc.most_common(1)[0]
            labels[label]["top_process"] = top_proc
            labels[label]["processes"] = len(by_proc)
        text = f"{plural(opens, 'open')} in {elapsed_s:.1f}s, {failures} failed"
        if failed:
            top, count = min(failed.items(), key=lambda kv: (-kv[1], kv[0]))
            err, _, path = top.partition(" ")
            by_proc = procs[top]
            who = by_proc.most_common(1)[0][0]
            if len(by_proc) > 1:
                who += f" and {len(by_proc) - 1} other processes"
            text += f": {count} {err} on {path} by {who}"
        elif paths:
            top_path, count = paths.most_common(1)[0]
            text += f"; most opened {top_path} ({count})"
        return ReaderOutput(
            event_count=opens,
            events=samples.dumps(),
            summary=text,
            aggregates=Aggregates(
                totals={"opens": opens, "failures": failures, **dict(by_errno.most_common(5))},
                top={
                    "failures": top_entries(failed, labels=labels, limit=4),
                    "paths": top_entries(paths),
                },
            ),
        )
