"""exec reader: execs by command line, failed execs, exit codes and lifetimes."""

from __future__ import annotations

import contextlib
import errno
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    c_string,
    clip,
    comm_text,
    latency_from_values,
    plural,
    raw_field,
    top_entries,
)
from probes.models import Aggregates

EV_EXEC, EV_EXEC_FAIL, EV_EXIT = 1, 2, 3
_KINDS = {EV_EXEC: "exec", EV_EXEC_FAIL: "exec_failed", EV_EXIT: "exit"}
_MAX_CMDLINE = 120
ARG_LEN = 48  # as in probe.bpf.c


def _parent_from_proc(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return 0


def _comm_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=4, per_kind=2)
        self.cmdlines: Counter[str] = Counter()
        self.parents: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.tried: dict[int, list[str]] = {}  # pid -> failed execs not yet explained
        self.path_search_misses = 0
        self.exit_codes: Counter[str] = Counter()
        self.nonzero: Counter[str] = Counter()
        self.lifetimes_ns: list[int] = []
        self.streamed = 0

    def on_event(self, ring: str, event: Any) -> None:
        self.streamed += 1
        kind = int(event.kind)
        pid = int(event.pid)
        comm = comm_text(event.comm)
        data: dict[str, Any] = {}
        if kind in (EV_EXEC, EV_EXEC_FAIL):
            raw = raw_field(event, "args")
            argc = min(int(event.argc), len(raw) // ARG_LEN)
            argv = [c_string(raw[i * ARG_LEN : (i + 1) * ARG_LEN]) for i in range(argc)]
            cmdline = " ".join(argv).strip()[:_MAX_CMDLINE]
            if not cmdline:
                cmdline = f"{c_string(event.filename)} <argv unreadable>"
            ppid = int(event.ppid) or _parent_from_proc(pid)
            data = {
                "filename": clip(c_string(event.filename), 64),
                "argv": clip(cmdline, 80),
                "ppid": ppid,
            }
            filename = c_string(event.filename)
            if kind == EV_EXEC:
                self.cmdlines[clip(cmdline, 80)] += 1
                parent = _comm_of(ppid) if ppid else ""
                self.parents[f"{parent or '?'} (pid {ppid})"] += 1
                self._forget_path_search(pid, filename)
            else:
                err = errno.errorcode.get(int(event.code), f"errno {int(event.code)}")
                data["errno"] = err
                key = clip(f"{err} {filename}", 80)
                self.failed[key] += 1
                self.tried.setdefault(pid, []).append(key)
        else:
            code = int(event.code)
            label = "signal" if code < 0 else str(code)
            data = {"exit_code": None if code < 0 else code, "ppid": int(event.ppid)}
            self.exit_codes[label] += 1
            if code != 0:
                self.nonzero[f"{comm} exit {label}"] += 1
            if int(event.lifetime_ns):
                self.lifetimes_ns.append(int(event.lifetime_ns))
                data["lifetime_ms"] = round(int(event.lifetime_ns) / 1e6, 3)
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=pid,
                process_name=comm,
                event_type=_KINDS.get(kind, "other"),
                data=data,
            )
        )

    def _forget_path_search(self, pid: int, filename: str) -> None:
        """execvp() tries each $PATH directory: ENOENTs of the same name followed by a
        successful exec in the same process are a search, not a failure."""
        name = filename.rsplit("/", 1)[-1]
        for key in self.tried.pop(pid, []):
            if key.startswith("ENOENT ") and key.rsplit("/", 1)[-1] == name:
                self.failed[key] -= 1
                if self.failed[key] <= 0:
                    del self.failed[key]
                self.path_search_misses += 1

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        counts = [int(v.value) for v in bpf["totals"].values()] + [0, 0, 0, 0]
        execs, failed, exits = counts[1], counts[2], counts[3]
        lifetimes = latency_from_values(self.lifetimes_ns, base_unit="ns", unit="ms")
        text = (
            f"{plural(execs, 'exec')} ({failed - self.path_search_misses} failed) and "
            f"{plural(exits, 'exit')} "
            f"in {elapsed_s:.1f}s"
        )
        details = []
        if self.cmdlines:
            cmd, count = self.cmdlines.most_common(1)[0]
            details.append(f"top command {cmd!r} x{count}")
        if self.parents:
            parent, count = self.parents.most_common(1)[0]
            details.append(f"top parent {parent} x{count}")
        if self.failed:
            what, count = self.failed.most_common(1)[0]
            details.append(f"{count} failed with {what}")
        if self.nonzero:
            what, count = self.nonzero.most_common(1)[0]
            details.append(f"{count} {what}")
        if lifetimes.count:
            details.append(f"median lifetime {lifetimes.p50} ms")
        if details:
            text += ": " + ", ".join(details)
        return ReaderOutput(
            event_count=execs + failed + exits,
            events=self.samples.dumps(),
            summary=text,
            aggregates=Aggregates(
                totals={
                    "execs": execs,
                    "failed_execs": failed,
                    "path_search_misses": self.path_search_misses,
                    "exits": exits,
                },
                top={
                    "commands": top_entries(self.cmdlines, limit=3),
                    "parents": top_entries(self.parents, limit=3),
                    "failed_execs": top_entries(self.failed, limit=3),
                    "exit_codes": top_entries(self.exit_codes, limit=5),
                    "nonzero_exits": top_entries(self.nonzero, limit=3),
                },
                latency={"lifetime": lifetimes} if lifetimes.count else {},
            ),
        )
