"""memory_alloc reader: in-kernel per-process allocation sums -> top allocators and slab caches."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import SampleEvent, Samples, c_string, comm_text, plural, proc_label
from probes.models import Aggregates, TopEntry

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1 << 20
TOP_N = 3


def fmt_mib(count_bytes: float) -> str:
    mib = count_bytes / MIB
    return f"{mib:.1f} MiB" if mib >= 0.1 else f"{count_bytes / 1024:.1f} KiB"


class Usage(BaseModel):
    """One process's allocations during the probe."""

    pid: int
    comm: str
    page_allocs: int
    pages: int
    kmalloc_calls: int
    kmalloc_bytes: int
    cache_allocs: int
    cache_bytes: int
    faults: int

    @property
    def proc(self) -> str:
        return proc_label(self.comm, self.pid)

    @property
    def page_bytes(self) -> int:
        return self.pages * PAGE_SIZE


COUNTERS = (
    "page_allocs", "pages", "kmalloc_calls", "kmalloc_bytes", "cache_allocs", "cache_bytes",
    "faults",
)  # fmt: skip
# aggregates.top table -> the Usage field that ranks it
RANKED_BY = {"page_allocators": "pages", "kmalloc": "kmalloc_bytes", "page_faults": "faults"}


def _rank(rows: list[Usage], field: str) -> list[Usage]:
    chosen = [r for r in rows if getattr(r, field)]
    return sorted(chosen, key=lambda r: (-getattr(r, field), r.proc))[:TOP_N]


def _per_s(count: float, elapsed_s: float) -> float:
    return round(count / elapsed_s, 1) if elapsed_s > 0 else 0.0


def _entry(table: str, row: Usage, elapsed_s: float) -> TopEntry:
    """One row of a top table: pages (with MiB, rate and faults), kmalloc (bytes), faults."""
    labels: dict[str, str | int | float] = {"pid": row.pid, "comm": row.comm}
    if table == "page_allocators":
        return TopEntry(
            key=row.proc,
            count=row.pages,
            value=round(row.page_bytes / MIB, 1),
            labels={**labels, "pages_per_s": _per_s(row.pages, elapsed_s), "faults": row.faults},
        )
    if table == "kmalloc":
        return TopEntry(
            key=row.proc, count=row.kmalloc_calls, value=float(row.kmalloc_bytes), labels=labels
        )
    return TopEntry(key=row.proc, count=row.faults, labels=labels)


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=3)

    def on_event(self, ring: str, event: Any) -> None:
        order = int(event.order)
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=int(event.pid),
                process_name=comm_text(event.comm),
                event_type="high_order_page_alloc",
                data={
                    "order": order,
                    "bytes": (1 << order) * PAGE_SIZE,
                    "gfp_flags": f"{int(event.gfp_flags):#x}",
                },
            ),
            kind=f"order {order}",
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        rows = [
            Usage(
                pid=int(k.pid),
                comm=comm_text(k.comm),
                **{name: int(getattr(v, name)) for name in COUNTERS},
            )
            for k, v in bpf["usage"].items()
        ]
        orders = {int(k.value): int(v.value) for k, v in bpf["orders"].items() if int(v.value)}
        high_order = int(self.run.params.get("high_order", 3))
        summed = {name: sum(getattr(r, name) for r in rows) for name in COUNTERS}
        totals: dict[str, int | float] = {
            "pages": summed["pages"],
            "page_mib": round(sum(r.page_bytes for r in rows) / MIB, 1),
            "page_allocs": summed["page_allocs"],
            "high_order_allocs": sum(c for o, c in orders.items() if o >= high_order),
            **{name: summed[name] for name in COUNTERS if name not in ("pages", "page_allocs")},
        }
        ranked = {table: _rank(rows, field) for table, field in RANKED_BY.items()}
        top: dict[str, list[TopEntry]] = {
            table: [_entry(table, row, elapsed_s) for row in leaders]
            for table, leaders in ranked.items()
            if leaders
        }
        caches = sorted(
            ((c_string(k.name), int(v.count), int(v.bytes)) for k, v in bpf["caches"].items()),
            key=lambda item: (-item[1], item[0]),
        )[:TOP_N]
        if caches:
            top["slab_caches"] = [
                TopEntry(key=name, count=count, value=float(size)) for name, count, size in caches
            ]
        if orders:
            top["page_orders"] = [
                TopEntry(key=f"order {o}", count=c)
                for o, c in sorted(orders.items(), key=lambda item: -item[1])[:TOP_N]
            ]
        return ReaderOutput(
            event_count=int(totals["page_allocs"] + totals["kmalloc_calls"])
            + int(totals["cache_allocs"] + totals["faults"]),
            events=self.samples.dumps(),
            summary=_summary(
                elapsed_s,
                totals,
                ranked["page_allocators"],
                ranked["kmalloc"],
                ranked["page_faults"],
            ),
            aggregates=Aggregates(totals=totals, top=top),
        )


def _summary(
    elapsed_s: float,
    totals: dict[str, int | float],
    pages: list[Usage],
    kernel: list[Usage],
    faults: list[Usage],
) -> str:
    head = f"Memory allocations in {elapsed_s:.1f}s"
    if not pages and not kernel and not faults:
        return f"{head}: none seen"
    kmalloc_calls = plural(int(totals["kmalloc_calls"]), "call")
    text = (
        f"{head}: {plural(int(totals['pages']), 'page')} ({totals['page_mib']} MiB), "
        f"kmalloc {fmt_mib(totals['kmalloc_bytes'])} in {kmalloc_calls}, "
        f"{plural(int(totals['faults']), 'user page fault')}"
    )
    if pages:
        lead = pages[0]
        text += (
            f"; top page allocator {lead.proc}: {plural(lead.pages, 'page')} "
            f"({fmt_mib(lead.page_bytes)}, {_per_s(lead.pages, elapsed_s):.0f}/s)"
        )
        if lead.faults:
            text += f" with {plural(lead.faults, 'fault')}"
    if kernel:
        text += f"; top kmalloc {kernel[0].proc} ({fmt_mib(kernel[0].kmalloc_bytes)})"
    if faults and (not pages or faults[0].pid != pages[0].pid):
        text += f"; most faults {faults[0].proc} ({faults[0].faults})"
    return text
