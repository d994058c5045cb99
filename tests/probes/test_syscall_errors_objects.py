"""syscall_errors names the object of every failing call, not only paths: the unix socket a
connect was aimed at (ENOENT), the ip:port of a refused connect, and it counts writes that fail
with ENOSPC on a full filesystem and opens that fail with EMFILE, per process. The workload, the
socket path, the port and the counts are drawn at random on each run."""

from __future__ import annotations

import random
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.catalog.syscall_errors.reader import sockaddr_text
from probes.models import ProbeFilters
from tests.support.live_probe import Workload, run_around
from tests.support.ports import free_port

WORKLOAD = r"""
import errno, json, os, resource, socket, sys
unix_path, port, full_dir, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open("/proc/self/comm", "w") as comm:
    comm.write(sys.argv[5])
print(json.dumps({}), flush=True)
sys.stdin.readline()
counts = {"unix": 0, "refused": 0, "enospc": 0, "emfile": 0}
big = os.open(os.path.join(full_dir, "fill"), os.O_WRONLY | os.O_CREAT)
block = b"x" * 65536
while True:  # fill the filesystem first
    try:
        os.write(big, block)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        break
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
for _ in range(rounds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(unix_path)
    except OSError:
        counts["unix"] += 1
    s.close()
    t = socket.socket()
    try:
        t.connect(("127.0.0.1", port))
    except OSError:
        counts["refused"] += 1
    t.close()
    try:
        os.write(big, block)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            counts["enospc"] += 1
while True:
    try:
        held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        break
for _ in range(rounds):
    try:
        os.open("/dev/null", os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            counts["emfile"] += 1
print(json.dumps(counts), flush=True)
"""


def _comm() -> str:
    return f"svc-{secrets.token_hex(3)}"


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.ebpf
def test_objects_of_failing_calls(tiny_fs: Path) -> None:
    rounds = random.randint(40, 90)
    unix_path = f"/tmp/{secrets.token_hex(5)}.sock"
    port = free_port()
    work = Workload(WORKLOAD, unix_path, str(port), str(tiny_fs), str(rounds), _comm())
    try:
        result = run_around(
            "syscall_errors", work, duration_s=2.5, params={"errors_only": True, "sample_limit": 4}
        )
        done = work.finish()
    finally:
        work.kill()
    assert done == {"unix": rounds, "refused": rounds, "enospc": rounds, "emfile": rounds}
    rows = {(e.labels["syscall"], e.labels["errno"]): e for e in result.aggregates.top["errors"]}
    assert rows[("connect", "ENOENT")].labels["address"] == f"unix:{unix_path}"
    assert rows[("connect", "ENOENT")].count == rounds
    assert rows[("connect", "ECONNREFUSED")].labels["address"] == f"127.0.0.1:{port}"
    assert rows[("connect", "ECONNREFUSED")].count == rounds
    # the fill's own last write failed too
    assert rows[("write", "ENOSPC")].count == rounds + 1
    assert rows[("openat", "EMFILE")].count == rounds + 1  # and the one that ended the fill
    assert all(e.labels["pid"] == work.pid for e in result.aggregates.top["errors"])
    assert f"{4 * rounds + 2} failed" in result.summary
    assert len(result.model_dump_json()) < 3_000


@pytest.mark.ebpf
def test_filter_by_comm_keeps_addresses(tiny_fs: Path) -> None:
    """The comm filter (in the kernel) still captures the address on the exit side."""
    unix_path = f"/tmp/{secrets.token_hex(5)}.sock"
    work = Workload(WORKLOAD, unix_path, str(free_port()), str(tiny_fs), "10", _comm())
    try:
        result = run_around(
            "syscall_errors",
            work,
            duration_s=2.0,
            filters=ProbeFilters(comm=work.comm),
            params={"errors_only": True},
        )
        work.finish()
    finally:
        work.kill()
    addresses = {e.labels.get("address") for e in result.aggregates.top["errors"]}
    assert f"unix:{unix_path}" in addresses


def test_sockaddr_text_decodes_families() -> None:
    port = random.randint(1, 65535)
    inet = (2).to_bytes(2, "little") + port.to_bytes(2, "big") + bytes([10, 1, 2, 3])
    assert sockaddr_text(inet + b"\0" * 56) == f"10.1.2.3:{port}"
    six = (10).to_bytes(2, "little") + port.to_bytes(2, "big") + b"\0" * 4 + b"\0" * 15 + b"\1"
    assert sockaddr_text(six) == f"[::1]:{port}"
    name = secrets.token_hex(4)
    assert sockaddr_text(b"\1\0/run/" + name.encode() + b"\0junk") == f"unix:/run/{name}"
    assert sockaddr_text(b"\1\0\0" + name.encode() + b"\0") == f"unix:@{name}"
    assert sockaddr_text(b"\0\0") == ""
