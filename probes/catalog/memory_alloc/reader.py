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


def _rank(rows: list[Usage], field: str) -> list[Usage]:
    chosen = [r for r in rows if getattr(r, field)]
    return sorted(chosen, key=lambda r: (-getattr(r, field), r.proc))[:TOP_N]


def _per_s(count: float, elapsed_s: float) -> float:
    return round(count / elapsed_s, 1) if elapsed_s > 0 else 0.0


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
                page_allocs=int(v.page_allocs),
                pages=int(v.pages),
                kmalloc_calls=int(v.kmalloc_calls),
                kmalloc_bytes=int(v.kmalloc_bytes),
                cache_allocs=int(v.cache_allocs),
                cache_bytes=int(v.cache_bytes),
                faults=int(v.faults),
            )
            for k, v in bpf["usage"].items()
        ]
        orders = {int(k.value): int(v.value) for k, v in bpf["orders"].items() if int(v.value)}
        high_order = int(self.run.params.get("high_order", 3))
        totals: dict[str, int | float] = {
            "pages": sum(r.pages for r in rows),
            "page_mib": round(sum(r.page_bytes for r in rows) / MIB, 1),
            "page_allocs": sum(r.page_allocs for r in rows),
            "high_order_allocs": sum(c for o, c in orders.items() if o >= high_order),
            "kmalloc_calls": sum(r.kmalloc_calls for r in rows),
            "kmalloc_bytes": sum(r.kmalloc_bytes for r in rows),
            "cache_allocs": sum(r.cache_allocs for r in rows),
            "cache_bytes": sum(r.cache_bytes for r in rows),
            "faults": sum(r.faults for r in rows),
        }
        top: dict[str, list[TopEntry]] = {}
        pages = _rank(rows, "pages")
        if pages:
            top["page_allocators"] = [
                TopEntry(
                    key=r.proc,
                    count=r.pages,
                    value=round(r.page_bytes / MIB, 1),
                    labels={
                        "pid": r.pid,
                        "comm": r.comm,
                        "pages_per_s": _per_s(r.pages, elapsed_s),
                        "faults": r.faults,
                    },
                )
                for r in pages
            ]
        kernel = _rank(rows, "kmalloc_bytes")
        if kernel:
            top["kmalloc"] = [
                TopEntry(
                    key=r.proc,
                    count=r.kmalloc_calls,
                    value=float(r.kmalloc_bytes),
                    labels={"pid": r.pid, "comm": r.comm},
                )
                for r in kernel
            ]
        faults = _rank(rows, "faults")
        if faults:
            top["page_faults"] = [
                TopEntry(key=r.proc, count=r.faults, labels={"pid": r.pid, "comm": r.comm})
                for r in faults
            ]
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
            summary=_summary(elapsed_s, totals, pages, kernel, faults),
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
