"""oom_kills, live: a process in a memory cgroup limited to 48 MB allocates until the kernel kills
it; the probe names the victim, its memory and the cgroup."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from probes.engine.runner import ProbeProgress, run_probe
from probes.engine.tracefs import tracepoint_fields
from probes.models import ProbeFilters, ProbeRequest
from tests.support.ebpf import scaled
from tests.support.live_probe import save_example

pytestmark = pytest.mark.ebpf

LIMIT = 48 * 1024 * 1024
GROW = r"""
import sys
sys.stdin.readline()
blocks = []
while True:
    blocks.append(b"x" * (4 * 1024 * 1024))
"""


def _memory_cgroup() -> Path:
    """A fresh memory cgroup: v2 (memory.max) when the unified tree has the controller, else v1."""
    name = f"bs{secrets.token_hex(3)}"
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "memory" in (v2 / "cgroup.controllers").read_text():
        path = v2 / name
        path.mkdir()
        (path / "memory.max").write_text(str(LIMIT))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        return path
    v1 = Path("/sys/fs/cgroup/memory")
    if not (v1 / "memory.limit_in_bytes").exists():
        pytest.skip("no writable memory cgroup (v1 or v2) on this host")
    path = v1 / name
    path.mkdir()
    (path / "memory.limit_in_bytes").write_text(str(LIMIT))
    return path


def test_oom_kill_in_a_limited_cgroup_is_reported() -> None:
    cgroup = _memory_cgroup()
    proc = subprocess.Popen([sys.executable, "-c", GROW], stdin=subprocess.PIPE)
    try:
        (cgroup / "cgroup.procs").write_text(str(proc.pid))
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        attached = threading.Event()
        box = {}

        def on_progress(progress: ProbeProgress) -> None:
            if progress.phase == "attached":
                attached.set()

        request = ProbeRequest(
            probe="oom_kills", duration_s=scaled(4), filters=ProbeFilters(pid=proc.pid)
        )
        thread = threading.Thread(
            target=lambda: box.update(r=run_probe(request, on_progress=on_progress))
        )
        thread.start()
        assert attached.wait(scaled(60))
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        code = proc.wait(timeout=scaled(30))
        thread.join(scaled(60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cgroup.rmdir()
    assert code == -9  # SIGKILL from the OOM killer
    result = box["r"]
    assert result.error is None
    assert result.aggregates.totals["oom_kills"] == 1
    victim = result.aggregates.top["victims"][0]
    assert victim.key == f"{comm} (pid {proc.pid})"
    event = result.events[0]
    assert event["process_id"] == proc.pid
    if "anon_rss" in tracepoint_fields("oom", "mark_victim"):
        assert victim.value is not None and 30 <= victim.value <= 60  # MB anon RSS near the limit
        assert event["data"]["anon_rss_kb"] * 1024 <= LIMIT + 8 * 1024 * 1024
        assert f"killed {comm} (pid {proc.pid}) with {victim.value} MB anon RSS" in result.summary
    else:  # 5.10's mark_victim has only the pid: the memory is unknown, never reported as 0
        assert victim.value is None and event["data"]["anon_rss_kb"] is None
        assert f"killed {comm} (pid {proc.pid}) with RSS not traced here" in result.summary
    save_example(result)
