"""oom_kills reader: one line per victim, with memory and the cgroup it was killed in."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, ClassVar

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import SampleEvent, Samples, comm_text, plural
from probes.models import Aggregates, TopEntry


def _cgroup2_root() -> Path | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return Path(parts[1])
    return None


def memcg_of(pid: int) -> str:
    """The memory cgroup of a live process: v1 `memory:` line, else the v2 `0::` line."""
    with contextlib.suppress(OSError):
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        for prefix in ("memory:", "0::"):
            for line in lines:
                _, _, rest = line.partition(":")
                if rest.startswith(prefix):
                    return rest[len(prefix) :]
    return ""


def cgroup_path(cgroup_id: int) -> str:
    """cgroup v2 id -> path: the id is the inode number of the cgroup's directory."""
    root = _cgroup2_root()
    if not cgroup_id or root is None:
        return ""
    controllers = root / "cgroup.controllers"
    if not controllers.exists() or "memory" not in controllers.read_text().split():
        return ""  # hybrid host: memory is a v1 controller, the v2 path would mislead
    for dirpath, _dirnames, _files in os.walk(root):
        try:
            if os.stat(dirpath).st_ino == cgroup_id:
                relative = os.path.relpath(dirpath, root)
                return "/" if relative == "." else "/" + relative
        except OSError:
            continue
    return ""


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=5, per_kind=5)
        self.victims: list[TopEntry] = []
        self.count = 0

    def on_event(self, ring: str, event: Any) -> None:
        self.count += 1
        comm = comm_text(event.comm)
        pid = int(event.pid)
        # None where this kernel's oom:mark_victim has no memory fields (5.10): unknown, not 0
        known = bool(event.has_memory)
        anon_kb = int(event.anon_rss) if known else None
        data: dict[str, Any] = {
            "anon_rss_kb": anon_kb,
            "file_rss_kb": int(event.file_rss) if known else None,
            "shmem_rss_kb": int(event.shmem_rss) if known else None,
            "total_vm_kb": int(event.total_vm) if known else None,
            "uid": int(event.uid),
            "oom_score_adj": int(event.oom_score_adj),
            "trigger": f"{comm_text(event.trigger_comm)} (pid {int(event.trigger_pid)})",
            "cgroup": memcg_of(pid) or cgroup_path(int(event.cgroup_id)),
        }
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=pid,
                process_name=comm,
                event_type="oom_kill",
                data=data,
            )
        )
        if len(self.victims) < 5:
            self.victims.append(
                TopEntry(
                    key=f"{comm} (pid {pid})",
                    count=1,
                    value=round(anon_kb / 1024, 1) if anon_kb is not None else None,
                    labels={"cgroup": data["cgroup"], "trigger": data["trigger"]},
                )
            )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        text = f"{plural(self.count, 'OOM kill')} in {elapsed_s:.1f}s"
        if self.victims:
            first = self.victims[0]
            where = first.labels.get("cgroup") or "?"
            rss = f"{first.value} MB anon RSS" if first.value is not None else "RSS not traced here"
            text += f": killed {first.key} with {rss} in cgroup {where}"
            if self.count > 1:
                text += f" and {self.count - 1} more"
        return ReaderOutput(
            event_count=self.count,
            events=self.samples.dumps(),
            summary=text,
            aggregates=Aggregates(totals={"oom_kills": self.count}, top={"victims": self.victims}),
        )
