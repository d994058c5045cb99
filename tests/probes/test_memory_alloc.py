"""memory_alloc on the real kernel: a program that allocates and touches 400 MiB must be the top
page allocator, with about 400 MiB of pages charged to its pid."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.engine.runner import ProbeProgress, run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.resolver import resolve_key
from tests.support.ebpf import scaled
from tests.support.paths import example_json
from tests.support.workloads import compile_c

EXAMPLE = example_json("memory_alloc")
SIZE_MIB = 400  # more than a compiler or a test runner next door allocates in 2 s
PAGES = SIZE_MIB * (1 << 20) // os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def toucher(tmp_path: Path) -> Path:
    return compile_c("touch_memory.c", tmp_path, "svc4")


def _run_while_allocating(
    binary: Path, filters: ProbeFilters | None = None, params: dict[str, bool] | None = None
) -> tuple[ProbeResult, int]:
    """Run the probe; once it is attached, run the allocator to completion."""
    procs: list[subprocess.Popen[bytes]] = []

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached" and not procs:
            proc = subprocess.Popen([str(binary), str(SIZE_MIB)])
            assert proc.wait(timeout=scaled(30)) == 0
            procs.append(proc)

    result = run_probe(
        ProbeRequest(
            probe="memory_alloc",
            duration_s=scaled(2),
            filters=filters or ProbeFilters(),
            params=dict(params or {}),
        ),
        on_progress=on_progress,
    )
    assert result.error is None, result.error
    assert procs, "the probe never reported attached"
    return result, procs[0].pid


@pytest.mark.ebpf
def test_toucher_is_the_top_page_allocator(toucher: Path) -> None:
    result, pid = _run_while_allocating(toucher)

    allocators = result.aggregates.top["page_allocators"]
    top = allocators[0]
    assert top.labels["pid"] == pid, [(e.key, e.count) for e in allocators]
    assert top.labels["comm"] == "svc4"
    # every touched page was allocated once (4 KiB pages, or 512 at a time with THP)
    assert 0.9 * PAGES <= top.count <= 1.5 * PAGES
    assert top.value is not None and 0.9 * SIZE_MIB <= top.value <= 1.5 * SIZE_MIB
    assert int(top.labels["faults"]) > 0
    assert f"top page allocator svc4 (pid {pid})" in result.summary
    assert "tracepoint:kmem:mm_page_alloc" in result.attach_points
    assert len(result.model_dump_json()) < 3_000


@pytest.mark.ebpf
def test_comm_filter_pages_only(toucher: Path) -> None:
    # the pid is not known before it starts: filter on its comm instead
    result, pid = _run_while_allocating(
        toucher, ProbeFilters(comm="svc4"), {"slab": False, "faults": False}
    )

    assert [e.labels["pid"] for e in result.aggregates.top["page_allocators"]] == [pid]
    totals = result.aggregates.totals
    assert 0.9 * PAGES <= totals["pages"] <= 1.5 * PAGES
    assert totals["kmalloc_calls"] == 0 and totals["cache_allocs"] == 0 and totals["faults"] == 0
    assert not any("kmalloc" in a or "page_fault" in a for a in result.attach_points)


@pytest.mark.ebpf
def test_answers_resolve_to_this_probe() -> None:
    spec = load_catalog().probes["memory_alloc"]
    for answer in spec.answers:
        resolved = resolve_key(answer)
        assert resolved.probe == "memory_alloc", (answer, resolved.reason)


def test_example_is_a_real_result() -> None:
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "memory_alloc"
    assert example.error is None
    assert example.aggregates.top["page_allocators"][0].count > 0
