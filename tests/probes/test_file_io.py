"""file_io on the real kernel: a program writing 64 MiB to a file in 4 KiB writes must be the top
writer, with exactly its bytes, and the file named even after the program has exited."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.engine.budget import expand_attach_points
from probes.engine.runner import ProbeProgress, run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.resolver import resolve_key
from tests.support.live_probe import save_example
from tests.support.paths import example_json
from tests.support.workloads import compile_c

EXAMPLE = example_json("file_io")
CHUNK = 4096
CHUNKS = 16384  # 64 MiB: more than anything else on a busy CI host writes in 2 s


@pytest.fixture
def writer(tmp_path: Path) -> Path:
    return compile_c("write_chunks.c", tmp_path, "svc3")


def _run_while_writing(
    writer: Path, target: Path, filters: ProbeFilters | None = None, ops: str = "all"
) -> tuple[ProbeResult, int]:
    """Run the probe; once it is attached, run the writer to completion."""
    procs: list[subprocess.Popen[bytes]] = []

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached" and not procs:
            proc = subprocess.Popen([str(writer), str(target), str(CHUNKS)])
            assert proc.wait(timeout=30) == 0
            procs.append(proc)

    result = run_probe(
        ProbeRequest(
            probe="file_io",
            duration_s=2,
            filters=filters or ProbeFilters(),
            params={"ops": ops},
        ),
        on_progress=on_progress,
    )
    assert result.error is None, result.error
    assert procs, "the probe never reported attached"
    return result, procs[0].pid


@pytest.mark.ebpf
def test_writer_is_the_top_writer_with_its_bytes(writer: Path, tmp_path: Path) -> None:
    target = tmp_path / "blob.dat"
    result, pid = _run_while_writing(writer, target)

    procs = result.aggregates.top["processes"]
    mine = [e for e in procs if e.labels["pid"] == pid]
    assert mine, f"writer pid {pid} not among {[e.key for e in procs]}"
    assert mine[0].labels["comm"] == "svc3"
    assert mine[0].labels["write_bytes"] == CHUNK * CHUNKS
    assert mine[0].labels["writes"] == CHUNKS
    top_writer = max(procs, key=lambda e: int(e.labels.get("write_bytes", 0)))
    assert top_writer.labels["pid"] == pid
    # the writer closed its file and exited before the probe ended: named from openat
    files = [e for e in result.aggregates.top["files"] if e.labels["pid"] == pid]
    assert files and files[0].labels["path"] == str(target)
    assert result.aggregates.latency["write"].count >= CHUNKS
    assert f"svc3 (pid {pid})" in result.summary
    assert "64.0 MiB" in result.summary
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


@pytest.mark.ebpf
def test_comm_filter_and_write_only(writer: Path, tmp_path: Path) -> None:
    target = tmp_path / "blob.dat"
    result, pid = _run_while_writing(writer, target, ProbeFilters(comm="svc3"), ops="write")

    procs = result.aggregates.top["processes"]
    assert [e.labels["pid"] for e in procs] == [pid]
    assert result.aggregates.totals["reads"] == 0
    assert result.aggregates.totals["write_bytes"] == CHUNK * CHUNKS
    assert "read" not in result.aggregates.latency
    attached = expand_attach_points(result.attach_points)
    assert "tracepoint:syscalls:sys_enter_write" in attached
    assert "tracepoint:syscalls:sys_enter_read" not in attached


@pytest.mark.ebpf
def test_answers_resolve_to_this_probe() -> None:
    spec = load_catalog().probes["file_io"]
    for answer in spec.answers:
        resolved = resolve_key(answer)
        assert resolved.probe == "file_io", (answer, resolved.reason)
    assert resolve_key("kprobe:vfs_read").params == {"ops": "read"}
    assert resolve_key("syscalls/sys_enter_write").params == {"ops": "write"}


def test_example_is_a_real_result() -> None:
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "file_io"
    assert example.error is None
    assert example.aggregates.totals["calls"] > 0
    assert example.aggregates.top["files"][0].labels["path"]
