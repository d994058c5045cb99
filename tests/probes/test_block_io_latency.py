"""block_io_latency, live: O_DIRECT reads and writes of a file on a real block device."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from probes.catalog.block_io_latency.reader import disk_name
from probes.engine.runner import run_probe
from probes.models import ProbeRequest, ProbeResult
from tests.support.ebpf import scaled
from tests.support.paths import example_json

EXAMPLE = example_json("block_io_latency")
SYS_DEV_BLOCK = Path("/sys/dev/block")

# Direct I/O (no page cache) on a 4 MiB file: alternate 4 KiB writes and reads, argv[2] s at most.
DIRECT_IO_PY = r"""
import mmap, os, sys, time
path = sys.argv[1]
block = 4096
blocks = 1024
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
buf = mmap.mmap(-1, block)
buf.write(b"z" * block)
for i in range(blocks):
    os.pwrite(fd, buf, i * block)
os.fsync(fd)
print("ready", flush=True)
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    offset = (i * 7919 % blocks) * block
    if i % 2:
        os.pwrite(fd, buf, offset)
    else:
        os.preadv(fd, [buf], offset)
    i += 1
"""


def _whole_disk(major: int, minor: int) -> str | None:
    """The disk holding block device MAJ:MIN (a partition's parent), or None if not a disk."""
    node = SYS_DEV_BLOCK / f"{major}:{minor}"
    if not node.exists():
        return None
    real = node.resolve()
    if (real / "partition").exists():
        real = real.parent
    return real.name


def _block_backed_dir() -> tuple[Path, str] | None:
    """A writable directory on a real block device, and that device's disk name."""
    for candidate in (tempfile.gettempdir(), "/var/tmp", "/work", "/"):
        path = Path(candidate)
        if not path.is_dir() or not os.access(path, os.W_OK):
            continue
        st = os.stat(path)
        disk = _whole_disk(os.major(st.st_dev), os.minor(st.st_dev))
        if disk is not None:
            return path, disk
    return None


def _any_block_device() -> bool:
    return any(
        not p.resolve().name.startswith(("loop", "ram", "zram")) for p in SYS_DEV_BLOCK.iterdir()
    )


def _save_example(result: ProbeResult) -> None:
    if os.environ.get("BPFSLEUTH_UPDATE_EXAMPLES") == "1":
        EXAMPLE.write_text(result.model_dump_json(indent=2) + "\n")


@pytest.mark.ebpf
def test_direct_io_latency_is_measured_on_its_disk_and_its_process_named() -> None:
    found = _block_backed_dir()
    if found is None:
        reason = "no writable directory on a block device (tmpfs/overlay only)"
        if os.environ.get("CI", "").lower() == "true" and _any_block_device():
            pytest.fail(reason + ", although this host has block devices")
        pytest.skip(reason)
    directory, disk = found
    with tempfile.TemporaryDirectory(dir=directory) as work:
        script = Path(work) / f"w{secrets.token_hex(3)}.py"
        script.write_text(DIRECT_IO_PY)
        data = Path(work) / f"d{secrets.token_hex(3)}"
        io = subprocess.Popen(
            [sys.executable, str(script), str(data), str(scaled(60))], stdout=subprocess.PIPE
        )
        try:
            assert io.stdout is not None and io.stdout.readline() == b"ready\n"
            result = run_probe(ProbeRequest(probe="block_io_latency", duration_s=scaled(2.0)))
        finally:
            io.kill()
            io.wait()

    assert result.error is None, result.error
    assert "tracepoint:block:block_rq_complete" in result.attach_points
    devices = {entry.key: entry for entry in result.aggregates.top["devices"]}
    assert disk in devices, devices
    ours = devices[disk]
    assert ours.count >= 100
    assert int(ours.labels.get("read", 0)) >= 50 and int(ours.labels.get("write", 0)) >= 50
    p99 = ours.value
    assert p99 is not None and 0.001 <= p99 <= 1000.0, p99  # ms
    p50 = float(ours.labels["p50_ms"])
    assert 0.0 < p50 <= p99 <= float(ours.labels["max_ms"])
    assert result.aggregates.latency[f"device {disk}"].count >= ours.count

    rows = [p for p in result.aggregates.top["processes"] if p.labels["pid"] == io.pid]
    assert rows, result.aggregates.top["processes"]
    assert rows[0].labels["disk"] == disk and rows[0].count >= 100
    assert rows[0].key.startswith(f"python3 (pid {io.pid}) on {disk}")
    # 4 KiB per I/O
    assert float(rows[0].labels["mb"]) == pytest.approx(rows[0].count * 4096 / 1e6, rel=0.05)
    assert disk in result.summary and "p99" in result.summary
    assert len(result.model_dump_json()) < 3000
    _save_example(result)


def test_dev_t_is_decoded_to_the_disk_name() -> None:
    node = next(iter(sorted(SYS_DEV_BLOCK.iterdir())), None)
    if node is None:
        pytest.skip("no block devices on this host")
    major, minor = (int(x) for x in node.name.split(":"))
    expected = next(
        line.split("=", 1)[1]
        for line in (node / "uevent").read_text().splitlines()
        if line.startswith("DEVNAME=")
    )
    assert disk_name((major << 20) | minor) == expected
    assert disk_name((4095 << 20) | 12345) == "4095:12345"


def test_every_answer_resolves_to_block_io_latency() -> None:
    from probes.catalog import load_catalog
    from probes.resolver import resolve_key

    spec = load_catalog().probes["block_io_latency"]
    assert "kprobe:blk_mq_start_request" in spec.answers
    for asked in spec.answers:
        resolved = resolve_key(asked)
        assert (resolved.how, resolved.probe) == ("answers", "block_io_latency"), resolved.reason
