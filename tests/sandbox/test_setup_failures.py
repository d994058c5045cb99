"""Bad input and a broken sandbox: when the sandbox cannot be set up, nothing runs and the
result says why; a layer the kernel lacks is reported, never assumed."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.conftest import require_sandbox
from tests.support.paths import BPFSLEUTH, REPO
from worker.cli.doctor import sandbox_check
from worker.host.executor import run_command
from worker.protocol import CommandRequest
from worker.sandbox import Profile, Stage, host_status, run_pipeline
from worker.sandbox.helper import HELPER_ENV, check

_AS_NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


@pytest.fixture
def no_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(HELPER_ENV, str(tmp_path / f"missing-{os.urandom(3).hex()}"))
    host_status.cache_clear()
    yield
    monkeypatch.undo()
    host_status.cache_clear()


def test_without_the_helper_no_command_runs(no_helper: None, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run_command(CommandRequest(id="c1", command="cat /proc/loadavg"))
    assert not result.ran and result.exit_code is None and result.stdout == ""
    assert "not found" in result.note and "runs no commands" in result.note
    assert "probes still run" in result.note
    assert result.sandbox == "none"
    assert not marker.exists()
    doctor = sandbox_check(check())
    assert doctor.status == "missing" and "runs no commands" in doctor.detail


def test_a_helper_that_cannot_drop_privileges_refuses_and_nothing_runs(tmp_path: Path) -> None:
    """As an unprivileged user the helper cannot set its securebits: it must refuse, and the
    executor must run nothing (no fallback to an unsandboxed spawn)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    require_sandbox()
    code = (
        "from worker.host.executor import run_command\n"
        "from worker.protocol import CommandRequest\n"
        "r = run_command(CommandRequest(id='c', command='cat /proc/loadavg'))\n"
        "print(r.model_dump_json())\n"
    )
    out = subprocess.run(
        [*_AS_NOBODY, sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["ran"] is False and result["stdout"] == ""
    assert "cannot be set up here" in result["note"] and "securebits" in result["note"]


def test_a_stage_the_helper_refuses_stops_the_whole_pipeline() -> None:
    require_sandbox()
    bad = Profile.model_construct(
        caps=frozenset({"sys_admin"}),
        ip_sockets=False,
        tcp=False,
        unix_sockets=False,
        fork=False,
        device_ioctls=False,
        open_read_write=False,
        landlock=True,
    )
    stages = [
        Stage(path="/usr/bin/cat", argv=["cat", "/proc/loadavg"]),
        Stage(path="/usr/bin/head", argv=["head", "-n1"], profile=bad),
    ]
    outcome = run_pipeline(stages, timeout_s=5, output_cap=4096)
    assert not outcome.ran and outcome.stdout == b""
    assert "sandbox refused to start 'head'" in outcome.note
    assert "unknown capability sys_admin" in outcome.note


def test_a_program_that_cannot_be_executed_is_reported(tmp_path: Path) -> None:
    require_sandbox()
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o644)
    outcome = run_pipeline([Stage(path=str(script), argv=["x"])], timeout_s=5, output_cap=4096)
    assert not outcome.ran and outcome.stdout == b""
    assert outcome.note == "could not start 'x': Permission denied"


def test_doctor_reports_the_layers_measured_here() -> None:
    require_sandbox()
    status = check()
    report = sandbox_check(status)
    assert status.layers.startswith("seccomp") and "+caps(" in status.layers
    assert "rlimits" in status.layers and "nnp" in status.layers
    landlock_abi = _landlock_abi()
    if landlock_abi:
        assert f"landlock(abi {landlock_abi})" in status.layers and report.status == "ok"
    else:
        assert "landlock" not in status.layers and report.status == "warn"
        assert "no landlock" in report.detail


def _landlock_abi() -> int:
    """The kernel's Landlock ABI, asked directly (landlock_create_ruleset with VERSION)."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def test_doctor_cli_json_has_the_sandbox() -> None:
    require_sandbox()
    out = subprocess.run(
        [str(BPFSLEUTH), "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["sandbox"]["available"] is True
    assert report["sandbox"]["layers"] == host_status().layers
    names = [c["name"] for c in report["checks"]]
    assert "sandbox" in names
