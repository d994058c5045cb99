"""file_sync, live: a writer appends and fsyncs a random number of times (and fdatasyncs some),
beside a process that writes without syncing; the probe counts each call by process, with the
time spent, and leaves the non-syncing writer out."""

from __future__ import annotations

import random
import secrets
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.models import ProbeFilters, ProbeResult
from tests.support.live_probe import Workload, run_around, save_example
from tests.support.paths import example_json

EXAMPLE = example_json("file_sync")
WRITER = r"""
import json, os, sys
path, fsyncs, datasyncs, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open("/proc/self/comm", "w") as f:
    f.write(name)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
print(json.dumps({}), flush=True)
sys.stdin.readline()
for i in range(fsyncs):
    os.write(fd, b"record %d\n" % i)
    os.fsync(fd)
for i in range(datasyncs):
    os.write(fd, b"data %d\n" % i)
    os.fdatasync(fd)
try:
    os.fsync(99)  # not open: EBADF
except OSError:
    pass
print(json.dumps({}), flush=True)
"""


@pytest.mark.ebpf
def test_sync_calls_are_counted_per_process(tmp_path: Path) -> None:
    fsyncs, datasyncs = random.randint(20, 80), random.randint(5, 15)
    name = f"wal{secrets.token_hex(3)}"
    work = Workload(WRITER, str(tmp_path / "wal.log"), str(fsyncs), str(datasyncs), name)
    try:
        result = run_around("file_sync", work, duration_s=2.5, filters=ProbeFilters(comm=name))
        work.finish()
    finally:
        work.kill()
    rows = {e.labels["call"]: e for e in result.aggregates.top["syncers"]}
    assert rows["fsync"].count == fsyncs + 1
    assert rows["fsync"].labels["errors"] == 1
    assert rows["fdatasync"].count == datasyncs
    assert all(e.labels["pid"] == work.pid for e in rows.values())
    assert float(rows["fsync"].labels["total_ms"]) > 0
    assert result.aggregates.totals["calls"] == fsyncs + 1 + datasyncs
    assert f"most by {name} (pid {work.pid}): {fsyncs + 1} fsync" in result.summary
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


def test_spec_and_example() -> None:
    spec = load_catalog().probes["file_sync"]
    assert spec.overhead == "low"
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "file_sync" and example.aggregates.top["syncers"]
