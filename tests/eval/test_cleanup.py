"""Every fault and the noise leave nothing behind: no process of their sessions, no mount, no
cgroup, no directory — after a normal run, after a failure midway, and when the runner is
told to stop (SIGTERM) in the middle of an investigation. Real processes and mounts, as root."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.eval.catalog import BY_NAME, FAULTS
from bench.eval.draw import Draw
from bench.eval.harness import Ctx, FaultSpec, mounts_under, session_members
from bench.eval.noise import start_noise
from tests.support.paths import REPO
from tests.support.workloads.scenarios import NoMemoryCgroup, host_turn

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the eval's faults need root (mounts, uids, cgroups)")
        pytest.skip("needs root")


def gone(pids: list[int], leaders: list[int], timeout_s: float = 3.0) -> list[int]:
    """The pids still alive in the fault's sessions after `timeout_s` (reaping takes a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in session_members(leaders) if p in pids]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def start_and_stop(spec: FaultSpec, *, noise: bool, fail: bool = False) -> None:
    expect = pytest.raises(RuntimeError) if fail else contextlib.nullcontext()
    with host_turn(), expect, Ctx(Draw(secrets.randbelow(2**31), spec.name)) as ctx:
        drawn = start_noise(ctx) if noise else {}
        try:
            fault = spec.start(ctx)
        except NoMemoryCgroup as exc:
            if fail:
                pytest.skip(str(exc))
            return  # no writable memory cgroup here (the scenario tests skip too)
        ctx.settle(0.3)
        workdir = ctx.workdir
        leaders = [p.pid for p in ctx.spawned]
        members = session_members(leaders)
        assert fault.processes and all(p.pid in members for p in fault.processes)
        assert not noise or len(drawn["comms"].split()) == 5
        if spec.name in {"disk_full", "read_only_fs"}:
            assert mounts_under(workdir)
        if fail:
            raise RuntimeError("a failure in the middle of the run")
    assert gone(members, leaders) == []
    assert not workdir.exists() and mounts_under(workdir) == []
    cgroup = fault.drawn.get("cgroup")
    if cgroup:
        assert not any(Path("/sys/fs/cgroup").glob(f"*/{cgroup}"))


def test_every_fault_stops_without_a_trace() -> None:
    for spec in FAULTS:
        start_and_stop(spec, noise=False)


@pytest.mark.parametrize("name", ["disk_full", "read_only_fs", "oom_kill", "zombie_pileup"])
def test_a_failure_midway_still_stops_the_fault_and_the_noise(name: str) -> None:
    start_and_stop(BY_NAME[name], noise=True, fail=True)


@pytest.mark.ebpf
def test_sigterm_to_the_runner_mid_investigation_stops_everything(tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("w*"))
    out = tmp_path / "eval.json"
    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.eval", "--only", "disk_full", "--noise", "on", "--out", out],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # the host lock may be held by another scenario run
        workdirs: list[Path] = []
        while time.monotonic() < deadline and not workdirs:
            workdirs = [
                d for d in set(Path("/tmp").glob("w*")) - before if (d / "var" / "spool").exists()
            ]
            time.sleep(0.2)
        assert workdirs, "the fault never started"
        workdir = workdirs[0]
        time.sleep(2)  # the fault has settled (0.8 s) and the loop's first step is running
        started = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _exe_in(p, workdir)
        ]
        mounted = mounts_under(workdir)
        assert len(started) >= 5 and mounted  # the noise, the fault, the tmpfs
        runner.send_signal(signal.SIGTERM)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, output
    assert "interrupted" in output
    assert not workdir.exists() and mounts_under(workdir) == []
    assert [
        p for p in started if Path(f"/proc/{p}").exists() and _exe_in(Path(f"/proc/{p}"), workdir)
    ] == []
    assert not out.exists()


def _exe_in(proc: Path, workdir: Path) -> bool:
    try:
        return os.readlink(proc / "exe").startswith(str(workdir) + "/")
    except OSError:
        return False
