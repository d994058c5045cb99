"""process_exits reader: forks per parent, exits per (parent, comm, how), fatal signals.

Deaths by signal carry the decisive detail in the row itself: which signal, who sent it (the
process itself for a fault such as SIGSEGV, else the sender), and whether a core was dumped, as
the parent's wait4 status said (unknown when the parent did not reap it in the window).
"""

from __future__ import annotations

import contextlib
import signal
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import comm_text, plural, proc_label
from probes.models import Aggregates, TopEntry

TOP_N = 4
TOP_SPAWNERS = 6  # a busy host has several; the culprit must not fall off
HOW_CODE, HOW_SIGNAL, HOW_UNKNOWN = 0, 1, 2
CORE_SIGNALS = {
    signal.SIGQUIT,
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGABRT,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGSEGV,
    signal.SIGSYS,
    signal.SIGXCPU,
    signal.SIGXFSZ,
}
SI_USER = 0
SI_KERNEL = 0x80


def signal_name(number: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(number).name
    return f"signal {number}"


def parent_of(pid: int) -> int:
    """A live process's parent from /proc (0 when gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    return 0


def comm_of(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


class Exit(BaseModel):
    ppid: int
    pcomm: str
    comm: str
    how: int
    value: int
    count: int
    life_ns: int
    known_life: int
    max_life_ns: int
    last_pid: int
    core: int = 0  # reaped with the core bit set
    reaped: int = 0  # reaped by wait4 in the window (core known)

    @property
    def outcome(self) -> str:
        if self.how == HOW_CODE:
            return f"exit code {self.value}"
        if self.how == HOW_SIGNAL:
            name = signal_name(self.value)
            if not self.reaped:
                return f"killed by {name}" + (
                    " (core dump unknown)" if self.value in CORE_SIGNALS else ""
                )
            if self.core:
                return f"killed by {name}, core dumped"
            return f"killed by {name}, no core dump"
        return "ended (no exit code seen)"

    @property
    def parent(self) -> str:
        return proc_label(self.pcomm, self.ppid) if self.ppid else "unknown parent"

    @property
    def mean_life_ms(self) -> float | None:
        return round(self.life_ns / self.known_life / 1e6, 1) if self.known_life else None


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        seconds = max(elapsed_s, 0.001)
        forks: Counter[tuple[int, str]] = Counter()
        for k, v in bpf["forks"].items():
            forks[(int(k.ppid), comm_text(k.comm))] += int(v.value)
        waits: dict[tuple[int, str, int], list[int]] = defaultdict(lambda: [0, 0])
        for k, v in bpf["waits"].items():
            status = int(k.status)
            termsig = status & 0x7F
            if termsig and termsig != 0x7F:  # WIFSIGNALED
                entry = waits[(int(k.ppid), comm_text(k.comm), termsig)]
                entry[0] += int(v.value)
                if status & 0x80:  # WCOREDUMP
                    entry[1] += int(v.value)
        exits = []
        for k, v in bpf["exits"].items():
            ppid, comm = int(k.ppid), comm_text(k.comm)
            pcomm = comm_text(k.pcomm)
            if not ppid:  # born before the probe: its parent, while both live
                ppid = parent_of(int(v.last_pid))
                pcomm = comm_of(ppid) if ppid else ""
            row = Exit(
                ppid=ppid,
                pcomm=pcomm,
                comm=comm,
                how=int(k.how),
                value=int(k.value),
                count=int(v.count),
                life_ns=int(v.life_ns),
                known_life=int(v.known_life),
                max_life_ns=int(v.max_life_ns),
                last_pid=int(v.last_pid),
            )
            if row.how == HOW_SIGNAL:
                reaped, core = waits.get((ppid, comm, row.value), [0, 0])
                row.reaped, row.core = reaped, core
            exits.append(row)
        exits.sort(key=lambda e: (e.how != HOW_SIGNAL, -e.count))
        signals = []
        for k, v in bpf["signals"].items():
            signals.append(
                (
                    int(v.value),
                    int(k.sig),
                    int(k.code),
                    comm_text(k.comm),
                    proc_label(comm_text(k.scomm), int(k.sender)),
                )
            )
        signals.sort(key=lambda s: -s[0])
        top: dict[str, list[TopEntry]] = {}
        spawners = forks.most_common(TOP_SPAWNERS)
        if spawners:
            top["spawners"] = [
                TopEntry(
                    key=proc_label(comm, ppid),
                    count=count,
                    value=round(count / seconds, 1),
                    labels={"pid": ppid, "comm": comm},
                )
                for (ppid, comm), count in spawners
            ]
        if exits:
            top["exits"] = [_exit_entry(e, seconds) for e in exits[:TOP_N]]
        if signals:
            top["signals"] = [
                TopEntry(
                    key=f"{signal_name(sig)} to {target}",
                    count=count,
                    labels={
                        "signal": signal_name(sig),
                        "target": target,
                        "sender": sender,
                        "origin": "fault" if code > 0 and code != SI_KERNEL else "sent",
                    },
                )
                for count, sig, code, target, sender in signals[:TOP_N]
            ]
        total_forks = sum(forks.values())
        total_exits = sum(e.count for e in exits)
        killed = sum(e.count for e in exits if e.how == HOW_SIGNAL)
        return ReaderOutput(
            event_count=total_forks + total_exits,
            summary=_summary(elapsed_s, spawners, exits, total_forks, total_exits),
            aggregates=Aggregates(
                totals={
                    "forks": total_forks,
                    "exits": total_exits,
                    "killed_by_signal": killed,
                    "fatal_signals": sum(s[0] for s in signals),
                },
                top=top,
            ),
        )


def _exit_entry(e: Exit, seconds: float) -> TopEntry:
    labels: dict[str, str | int | float] = {
        "comm": e.comm,
        "parent": e.parent,
        "outcome": e.outcome,
        "last_pid": e.last_pid,
        "rate": round(e.count / seconds, 1),
    }
    if e.ppid:
        labels["ppid"] = e.ppid
    if e.how == HOW_SIGNAL:
        labels["signal"] = signal_name(e.value)
        if e.reaped:
            labels["core_dumped"] = "yes" if e.core else "no"
    elif e.how == HOW_CODE:
        labels["exit_code"] = e.value
    if e.mean_life_ms is not None:
        labels["mean_life_ms"] = e.mean_life_ms
    return TopEntry(key=f"{e.comm} from {e.parent}: {e.outcome}", count=e.count, labels=labels)


def _summary(
    elapsed_s: float,
    spawners: list[tuple[tuple[int, str], int]],
    exits: list[Exit],
    total_forks: int,
    total_exits: int,
) -> str:
    text = (
        f"Processes in {elapsed_s:.1f}s: {plural(total_forks, 'fork')}, "
        f"{plural(total_exits, 'exit')}"
    )
    if spawners:
        (ppid, comm), count = spawners[0]
        text += f"; most forks by {proc_label(comm, ppid)} x{count}"
    # a crash (a signal whose default is a core dump) before more numerous deliberate kills
    killed = sorted(
        (e for e in exits if e.how == HOW_SIGNAL),
        key=lambda e: (e.value not in CORE_SIGNALS, -e.count),
    )
    if killed:
        e = killed[0]
        text += f"; {e.comm} from {e.parent} {e.outcome} x{e.count}"
    others = [e for e in exits if e.how == HOW_CODE and e.value != 0]
    if others:
        e = max(others, key=lambda x: x.count)
        text += f"; {e.comm} from {e.parent} exit code {e.value} x{e.count}"
    return text
