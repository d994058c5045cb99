"""cpu_profile reader: stack-id counts -> symbolised folded stacks, hot functions, busy processes.

User symbols are loaded per process when its first sample arrives (ring `new_pids`), so a process
that exits before the end of the run is still symbolised; bcc keeps its symbol cache per pid.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import MAX_TOP, comm_text, plural, proc_label
from probes.models import Aggregates, TopEntry

MAX_FRAMES = 16
MAX_NAME = 60
FOLDED_BUDGET_CHARS = 1500  # default-sized output stays within a few hundred tokens
SYMBOLISED_STACKS = 200  # full stacks symbolised for folded lines (hottest first)
UNKNOWN = "[unknown]"


class Sample(BaseModel):
    """One in-kernel counter: a process and its two stack ids."""

    pid: int
    comm: str
    user_stack: int
    kernel_stack: int
    count: int


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:MAX_NAME]


def _split_module(symbol: str) -> tuple[str, str]:
    """`compute_step [w1]` -> (`compute_step`, `w1`)."""
    name, sep, module = symbol.rpartition(" [")
    if sep and module.endswith("]"):
        return name, module[:-1]
    return symbol, ""


def _frame_name(symbol: str) -> str:
    name, module = _split_module(symbol)
    if name == UNKNOWN and module:
        return f"[{module}]"
    return name


def _collapse_unknown(frames: list[str]) -> list[str]:
    out: list[str] = []
    for frame in frames:
        if out and frame == out[-1] and frame.startswith("["):
            continue
        out.append(frame)
    return out


class Symbols:
    """Symbol lookups with a cache; bcc does the ELF and kallsyms work."""

    def __init__(self, bpf: Any) -> None:
        self.bpf = bpf
        self.table = bpf["stacks"]
        self._cache: dict[tuple[int, int], str] = {}

    def user(self, addr: int, pid: int) -> str:
        key = (pid, addr)
        if key not in self._cache:
            self._cache[key] = _text(self.bpf.sym(addr, pid, show_module=True))
        return self._cache[key]

    def kernel(self, addr: int) -> str:
        key = (-1, addr)
        if key not in self._cache:
            self._cache[key] = _text(self.bpf.ksym(addr, show_module=False))
        return self._cache[key]

    def addresses(self, stack_id: int) -> list[int]:
        """Addresses of a stack, leaf first; [] for a missing stack (negative id)."""
        if stack_id < 0:
            return []
        try:
            return [int(addr) for addr in self.table.walk(stack_id)]
        except KeyError:
            return []

    def leaf(self, sample: Sample) -> str:
        """The function the sample was in: the kernel leaf if in the kernel, else the user one."""
        kernel = self.addresses(sample.kernel_stack)
        if kernel:
            return self.kernel(kernel[0]) + " [kernel]"
        user = self.addresses(sample.user_stack)
        if user:
            return self.user(user[0], sample.pid)
        return UNKNOWN

    def folded(self, sample: Sample) -> str:
        """`comm;root;...;leaf` with kernel frames suffixed `_[k]` (flamegraph.pl's convention).

        A user frame without a symbol shows its module (`[libc.so.6]`); runs of the same
        unsymbolised frame collapse into one.
        """
        user = [
            _frame_name(self.user(a, sample.pid))
            for a in reversed(self.addresses(sample.user_stack))
        ]
        kernel = [f"{self.kernel(a)}_[k]" for a in reversed(self.addresses(sample.kernel_stack))]
        frames = _collapse_unknown(user + kernel) or [UNKNOWN]
        if len(frames) > MAX_FRAMES:
            frames = ["..", *frames[-(MAX_FRAMES - 1) :]]
        return ";".join([sample.comm.replace(";", "_"), *(f.replace(";", "_") for f in frames)])


def _samples(bpf: Any) -> list[Sample]:
    out = [
        Sample(
            pid=int(key.pid),
            comm=comm_text(key.comm),
            user_stack=int(key.user_stack),
            kernel_stack=int(key.kernel_stack),
            count=int(value.value),
        )
        for key, value in bpf["counts"].items()
    ]
    return sorted(out, key=lambda s: -s.count)


def _folded_lines(symbols: Symbols, samples: list[Sample], limit: int) -> list[str]:
    folded: Counter[str] = Counter()
    for sample in samples[:SYMBOLISED_STACKS]:
        folded[symbols.folded(sample)] += sample.count
    lines: list[str] = []
    used = 0
    for stack, count in folded.most_common(limit):
        line = f"{stack} {count}"
        if lines and used + len(line) > FOLDED_BUDGET_CHARS * max(1, limit // 5):
            break
        lines.append(line)
        used += len(line)
    return lines


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("new_pids",)

    def on_event(self, ring: str, event: Any) -> None:
        """Load the process's symbols now, while it is alive (bcc caches them per pid)."""
        from bcc import BPF

        BPF.sym(0, int(event.pid))

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        samples = _samples(bpf)
        total = sum(s.count for s in samples)
        frequency = int(self.run.params.get("frequency", 49))
        cpus = os.cpu_count() or 1
        symbols = Symbols(bpf)

        functions: Counter[str] = Counter()
        function_pids: dict[str, Counter[int]] = {}
        processes: Counter[str] = Counter()
        process_pid: dict[str, int] = {}
        for sample in samples:
            leaf = symbols.leaf(sample)
            functions[leaf] += sample.count
            function_pids.setdefault(leaf, Counter())[sample.pid] += sample.count
            label = proc_label(sample.comm, sample.pid)
            processes[label] += sample.count
            process_pid[label] = sample.pid

        def pct(count: int) -> float:
            return round(100 * count / total, 1) if total else 0.0

        per_cpu_samples = frequency * elapsed_s  # 100% of one CPU
        top_functions = []
        for symbol, count in functions.most_common(MAX_TOP):
            name, module = _split_module(symbol)
            if name == UNKNOWN and module:
                name = f"[unknown in {module}]"
            labels: dict[str, str | int | float] = {
                "module": module,
                "pid": function_pids[symbol].most_common(1)[0][0],
            }
            top_functions.append(TopEntry(key=name, count=count, value=pct(count), labels=labels))
        top_processes = [
            TopEntry(
                key=label,
                count=count,
                value=pct(count),
                labels={
                    "pid": process_pid[label],
                    "cpu_pct": round(100 * count / per_cpu_samples, 1) if per_cpu_samples else 0,
                },
            )
            for label, count in processes.most_common(MAX_TOP)
        ]
        limit = int(self.run.params.get("stack_lines", 5))
        aggregates = Aggregates(
            totals={
                "samples": total,
                "frequency_hz": frequency,
                "cpus": cpus,
                "processes": len(processes),
                "distinct_stacks": len(samples),
            },
            top={"functions": top_functions, "processes": top_processes},
            folded_stacks=_folded_lines(symbols, samples, limit),
        )
        return ReaderOutput(
            event_count=total,
            summary=_summary(total, frequency, cpus, elapsed_s, top_processes, top_functions),
            aggregates=aggregates,
        )


def _summary(
    total: int,
    frequency: int,
    cpus: int,
    elapsed_s: float,
    processes: list[TopEntry],
    functions: list[TopEntry],
) -> str:
    head = (
        f"{plural(total, 'sample')} at {frequency} Hz on {plural(cpus, 'CPU')} in {elapsed_s:.1f}s"
    )
    if not total:
        return f"{head}: the CPUs were idle"
    text = head
    if processes:
        top = processes[0]
        text += (
            f": busiest {top.key} {top.value:.0f}% of samples (~{top.labels['cpu_pct']}% of a CPU)"
        )
    if functions:
        text += "; hottest " + ", ".join(f"{f.key} {f.value:.0f}%" for f in functions[:3])
    return text
