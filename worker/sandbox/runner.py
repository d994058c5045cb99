"""Run argv pipelines in the sandbox: no shell, bounded in time and output, nothing left behind.

This module does not judge commands; `worker.host.executor.run_command` asks the policy first and is
the only caller in production. Tests call `run_pipeline` directly to show the sandbox holds
without the policy. Each stage runs through the exec helper in its own session (one process
group) with a clean environment, stdin from /dev/null (or the previous stage) and `/` as working
directory. When the pipeline ends, for whatever reason, every stage's process group is killed
while its leader is still an unreaped zombie (so the group id cannot have been reused), which
takes any background child with it.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from worker.sandbox.helper import Limits, Report, find_helper, helper_argv, host_status
from worker.sandbox.profiles import Profile, profile_for

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEAN_ENV = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C"}
WORKING_DIRECTORY = "/"
_READ_CHUNK = 65536
_REAP_GRACE_S = 5.0
_REPORT_WAIT_S = 10.0
_ORPHAN_GRACE_S = 0.25


class PipelineOutcome(BaseModel):
    """What happened, as raw bytes (the executor redacts and marks cuts)."""

    ran: bool = False
    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_cut: bool = False
    stderr_cut: bool = False
    timed_out: bool = False
    duration_s: float = 0.0
    note: str = ""
    sandbox: str = ""


class Stage(BaseModel):
    path: str
    argv: list[str]
    profile: Profile | None = None
    """None: the profile of argv[0] (worker.sandbox.profiles)."""


def resolve(argv: list[str], profile: Profile | None = None) -> Stage:
    """`argv[0]` found on the system PATH (or taken as a path). Raises FileNotFoundError."""
    program = argv[0]
    path = program if "/" in program else shutil.which(program, path=SYSTEM_PATH)
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(f"program {program!r} not found (PATH={SYSTEM_PATH})")
    return Stage(path=path, argv=argv, profile=profile)


def sandbox_unavailable_note() -> str | None:
    """Why this host runs no command, or None when the sandbox works here."""
    status = host_status()
    if status.available:
        return None
    return f"{status.reason}; this host runs no commands until it is fixed (probes still run)"


def run_pipeline(
    stages: list[Stage],
    *,
    timeout_s: float,
    output_cap: int,
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
    sandboxed: bool = True,
) -> PipelineOutcome:
    """Run `stages` joined by pipes. `sandboxed=False` exists for the bench's baseline only."""
    started = time.monotonic()
    deadline = started + timeout_s
    helper: Path | None = None
    if sandboxed:
        unavailable = sandbox_unavailable_note()
        helper = find_helper()
        if unavailable or helper is None:
            return PipelineOutcome(note=unavailable or "sandbox helper disappeared", sandbox="none")
    limits = limits or Limits(cpu_s=int(timeout_s) + 1)
    processes: list[subprocess.Popen[bytes]] = []
    layers: list[str] = []
    err_read, err_write = os.pipe()
    previous: IO[bytes] | int = subprocess.DEVNULL
    failure = ""
    reports: list[int] = []
    try:
        for stage in stages:
            process, report_fd = _start(
                stage, previous, err_write, helper, limits, env or CLEAN_ENV
            )
            processes.append(process)
            if report_fd is not None:
                reports.append(report_fd)
            if not isinstance(previous, int):
                previous.close()
            assert process.stdout is not None
            previous = process.stdout
    except OSError as exc:
        failure = f"could not start {stage.argv[0]!r}: {exc.strerror or exc}"
    # Every stage's helper sets up in parallel; read what each applied (it execs in < 1 ms).
    for stage, report_fd in zip(stages, reports, strict=False):
        try:
            text = _read_report(report_fd, min(deadline, time.monotonic() + _REPORT_WAIT_S))
        finally:
            os.close(report_fd)
        report = Report.parse(text)
        failure = failure or _refusal(stage, report)
        layers.append(report.layers)
    if failure:
        os.close(err_write)
        os.close(err_read)
        if not isinstance(previous, int):
            previous.close()
        _finish(processes, deadline=time.monotonic())
        return PipelineOutcome(note=failure, sandbox=_layers_text(stages, layers))
    os.close(err_write)
    assert not isinstance(previous, int)
    capture = _Capture(previous.fileno(), err_read, output_cap, [p.pid for p in processes])
    try:
        finished = capture.read_until(deadline)
        timed_out = not finished and not capture.stdout_cut
        if capture.stdout_cut or timed_out:
            _kill_groups(processes)
        exited = _wait_exited(processes, deadline)
        timed_out = timed_out or not exited
    finally:
        stuck = _finish(processes, deadline=time.monotonic())
        previous.close()
        capture.close()
    notes = _stage_notes(stages, processes, timed_out=timed_out, cut=capture.stdout_cut)
    if stuck:
        notes.append(f"{', '.join(stuck)} did not die (uninterruptible sleep?)")
    return PipelineOutcome(
        ran=True,
        exit_code=processes[-1].returncode,
        stdout=bytes(capture.stdout),
        stderr=bytes(capture.stderr),
        stdout_cut=capture.stdout_cut,
        stderr_cut=capture.stderr_cut,
        timed_out=timed_out,
        duration_s=round(time.monotonic() - started, 3),
        note="; ".join(notes),
        sandbox=_layers_text(stages, layers) if sandboxed else "none (bench baseline)",
    )


def _start(
    stage: Stage,
    stdin: IO[bytes] | int,
    stderr: int,
    helper: Path | None,
    limits: Limits,
    env: dict[str, str],
) -> tuple[subprocess.Popen[bytes], int | None]:
    """Start one stage; with the sandbox, also return the fd its helper reports on."""
    common = {
        "stdin": stdin,
        "stdout": subprocess.PIPE,
        "stderr": stderr,
        "env": env,
        "cwd": WORKING_DIRECTORY,
        "start_new_session": True,
        "close_fds": True,
    }
    if helper is None:
        return subprocess.Popen(stage.argv, executable=stage.path, **common), None  # type: ignore[call-overload]
    report_read, report_write = os.pipe()
    try:
        args = helper_argv(
            helper,
            stage.profile or profile_for(stage.argv[0]),
            limits,
            report_fd=report_write,
            path=stage.path,
            argv=stage.argv,
        )
        process = subprocess.Popen(args, pass_fds=(report_write,), **common)  # type: ignore[call-overload]
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    return process, report_read


def _read_report(fd: int, until: float) -> str:
    """Everything the helper wrote before execve closed the fd (or it exited)."""
    data = bytearray()
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return data.decode(errors="replace") + "\nrefused the helper did not report in time"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk


def _refusal(stage: Stage, report: Report) -> str:
    if report.refused:
        return (
            f"sandbox refused to start {stage.argv[0]!r}: {report.refused}; "
            "nothing runs without the sandbox"
        )
    if report.exec_error:
        return f"could not start {stage.argv[0]!r}: {report.exec_error}"
    if not report.layers:
        return f"sandbox helper gave no report for {stage.argv[0]!r}; not run"
    return ""


def _layers_text(stages: list[Stage], layers: list[str]) -> str:
    if not layers:
        return "none"
    if len(set(layers)) == 1:
        return layers[0]
    return "; ".join(f"{s.argv[0]}: {text}" for s, text in zip(stages, layers, strict=False))


def _kill_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every stage's process group (its session: the helper made each a leader)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _wait_exited(processes: list[subprocess.Popen[bytes]], deadline: float) -> bool:
    """Wait, without reaping, until every stage leader exited; False at the deadline."""
    return all(_poll_exit(p.pid, deadline - time.monotonic()) for p in processes)


def _poll_exit(pid: int, timeout: float) -> bool:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], max(timeout, 0.0))
        return bool(ready)
    finally:
        os.close(pidfd)


def _finish(processes: list[subprocess.Popen[bytes]], *, deadline: float) -> list[str]:
    """Kill every group (leaders unreaped, so their ids are still theirs), then reap. A process
    stuck in the kernel (D state, a hung NFS mount) cannot die: give up after a grace period
    rather than hang the worker. Returns the argv[0] of stages left behind."""
    _kill_groups(processes)
    until = max(deadline, time.monotonic()) + _REAP_GRACE_S
    stuck: list[str] = []
    for process in processes:
        try:
            process.wait(timeout=max(until - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            stuck.append(str(process.args[0]) if isinstance(process.args, list) else "?")
    if not stuck:
        _await_empty_groups(processes, until)
    return stuck


def _await_empty_groups(processes: list[subprocess.Popen[bytes]], until: float) -> None:
    """SIGKILL is asynchronous: wait until the killed background members are gone, so that
    when the result is returned nothing of the command is left (signal 0 only probes)."""
    pending = [process.pid for process in processes]
    while pending and time.monotonic() < until:
        alive = []
        for pgid in pending:
            try:
                os.killpg(pgid, 0)
                alive.append(pgid)
            except (ProcessLookupError, PermissionError):
                continue
        pending = alive
        if pending:
            time.sleep(0.002)


def _stage_notes(
    stages: list[Stage],
    processes: list[subprocess.Popen[bytes]],
    *,
    timed_out: bool,
    cut: bool,
) -> list[str]:
    notes: list[str] = []
    if timed_out:
        notes.append("timed out; the whole pipeline was killed")
    if cut:
        notes.append("output cut at the cap; the pipeline was stopped")
    for index, (stage, process) in enumerate(zip(stages[:-1], processes[:-1], strict=True)):
        code = process.returncode
        if code not in (0, None, -signal.SIGPIPE, -signal.SIGKILL):
            notes.append(f"stage {index + 1} ({stage.argv[0]}) exited with {code}")
    return notes


class _Capture:
    """Reads the last stage's stdout and every stage's stderr, each up to the cap. Once every
    stage leader has exited, a background child still holding a pipe gets `_ORPHAN_GRACE_S`
    to finish writing, then the pipeline ends (and the group kill takes the child)."""

    def __init__(self, stdout_fd: int, stderr_fd: int, cap: int, pids: list[int]) -> None:
        self.cap = cap
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_cut = False
        self.stderr_cut = False
        self._stderr_fd = stderr_fd
        self._selector = selectors.DefaultSelector()
        self._selector.register(stdout_fd, selectors.EVENT_READ, "stdout")
        self._selector.register(stderr_fd, selectors.EVENT_READ, "stderr")
        self._streams = 2
        self._pidfds: list[int] = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                pidfd = os.pidfd_open(pid)
                self._pidfds.append(pidfd)
                self._selector.register(pidfd, selectors.EVENT_READ, "exit")

    def read_until(self, deadline: float) -> bool:
        """True when both streams reached EOF (or stdout was cut, or every leader exited and
        the grace passed) before the deadline."""
        leaders = len(self._pidfds)
        while self._streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            events = self._selector.select(remaining)
            if not events and leaders == 0:
                return True  # the grace after the last leader's exit has passed
            for key, _ in events:
                if key.data == "exit":
                    self._selector.unregister(key.fd)
                    leaders -= 1
                    if leaders == 0:
                        deadline = min(deadline, time.monotonic() + _ORPHAN_GRACE_S)
                    continue
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    self._selector.unregister(key.fd)
                    self._streams -= 1
                    continue
                buffer = self.stdout if key.data == "stdout" else self.stderr
                room = self.cap - len(buffer)
                buffer += chunk[: max(room, 0)]
                if len(chunk) > room:
                    if key.data == "stdout":
                        self.stdout_cut = True
                        return True
                    self.stderr_cut = True  # keep draining stderr so writers never block
        return True

    def close(self) -> None:
        self._selector.close()
        os.close(self._stderr_fd)
        for pidfd in self._pidfds:
            os.close(pidfd)
