"""Run one command under the policy: argv pipelines without a shell, bounded and redacted.

The only way a model's command ever runs on a host. `run_command` asks the policy first; a
`deny` never runs, `needs_approval` runs only with `approved=True`. Stages are joined by OS pipes
between subprocesses; each runs in its own process group with a clean environment, stdin from
/dev/null and `/` as working directory. On timeout every stage's group is killed and reaped.
Output beyond the cap is cut with a visible marker; stdout and stderr are redacted.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import selectors
import shutil
import signal
import subprocess
import time
from typing import IO

from pydantic import BaseModel

from worker.policy import SYSTEM_BIN_DIRS, evaluate
from worker.policy.paths import PathFinding, worst_path_finding
from worker.policy.programs import NEVER_EXECUTE_TARGETS
from worker.protocol import CommandRequest, CommandResult
from worker.redact import redact

CLEAN_PATH = ":".join(SYSTEM_BIN_DIRS)
CLEAN_ENV = {"PATH": CLEAN_PATH, "LANG": "C", "LC_ALL": "C"}
WORKING_DIRECTORY = "/"
MAX_TIMEOUT_S = 60.0
_READ_CHUNK = 65536
_REAP_GRACE_S = 5.0


def cut_marker(cap: int) -> str:
    return f"\n…[output cut at {cap} bytes]"


class _Outcome(BaseModel):
    ran: bool = False
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    timed_out: bool = False
    duration_s: float = 0.0
    note: str = ""


class _Refusal(Exception):
    """A stage that must not start; `str()` says why."""


def run_command(
    request: CommandRequest,
    *,
    approved: bool = False,
    timeout_s: float | None = None,
    output_cap: int | None = None,
) -> CommandResult:
    """Judge `request.command`, run it if allowed (or approved), and report what happened."""
    from worker.settings import get_settings

    decision = evaluate(request.command)
    result = CommandResult(
        id=request.id,
        command=redact(request.command),
        verdict=decision.verdict,
        reason=redact(decision.reason),
    )
    if decision.verdict == "deny":
        return result.model_copy(update={"note": "denied by policy; it never runs"})
    if decision.verdict == "needs_approval" and not approved:
        return result.model_copy(
            update={"note": "needs approval from an authorised responder before it runs"}
        )
    hidden = _secret_behind_link(decision.stages)
    if hidden is not None and hidden.verdict == "deny":
        return result.model_copy(
            update={
                "verdict": "deny",
                "reason": redact(hidden.reason),
                "note": "denied by policy; it never runs",
            }
        )
    if hidden is not None and not approved:
        return result.model_copy(
            update={
                "verdict": "needs_approval",
                "reason": redact(hidden.reason),
                "note": "needs approval from an authorised responder before it runs",
            }
        )
    settings = get_settings()
    timeout = settings.command_timeout_s if timeout_s is None else timeout_s
    timeout = min(max(timeout, 0.1), MAX_TIMEOUT_S)
    cap = settings.command_output_bytes if output_cap is None else max(1, output_cap)
    outcome = _run_pipeline(decision.stages, timeout_s=timeout, output_cap=cap)
    return result.model_copy(update=outcome.model_dump())


def _secret_behind_link(stages: list[list[str]]) -> PathFinding | None:
    """Existing paths judged again just before the run, by what they resolve to now (a symlink
    made or swapped after the policy read the text counts). The worst finding, or None."""
    existing = [
        arg
        for argv in stages
        for arg in argv[1:]
        if "/" in arg and os.path.lexists(posixpath.join(WORKING_DIRECTORY, arg))
    ]
    return worst_path_finding(existing)


def _resolve(program: str) -> str:
    path = program if "/" in program else shutil.which(program, path=CLEAN_PATH)
    if path is None or not os.path.isfile(path):
        raise _Refusal(f"program {program!r} not found (PATH={CLEAN_PATH})")
    if not os.access(path, os.X_OK):
        raise _Refusal(f"program {program!r} is not executable")
    target = posixpath.basename(os.path.realpath(path))
    if NEVER_EXECUTE_TARGETS.fullmatch(target):
        raise _Refusal(f"program {program!r} resolves to {target!r}, a shell or interpreter")
    return path


def _kill_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def _reap(processes: list[subprocess.Popen[bytes]], *, grace_s: float) -> list[str]:
    """Wait for every (killed) stage; a process stuck in the kernel (D state, e.g. a hung NFS
    mount) cannot die, so give up after `grace_s` rather than hang the worker. Python's
    subprocess module reaps it later. Returns the argv[0] of stages left behind."""
    until = time.monotonic() + grace_s
    stuck: list[str] = []
    for process in processes:
        try:
            process.wait(timeout=max(until - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            stuck.append(str(process.args[0]) if isinstance(process.args, list) else "?")
    return stuck


def _run_pipeline(stages: list[list[str]], *, timeout_s: float, output_cap: int) -> _Outcome:
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        paths = [_resolve(argv[0]) for argv in stages]
    except _Refusal as exc:
        return _Outcome(note=str(exc))
    processes: list[subprocess.Popen[bytes]] = []
    err_read, err_write = os.pipe()
    previous: IO[bytes] | int = subprocess.DEVNULL
    try:
        for path, argv in zip(paths, stages, strict=True):
            process = subprocess.Popen(
                argv,
                executable=path,
                stdin=previous,
                stdout=subprocess.PIPE,
                stderr=err_write,
                env=CLEAN_ENV,
                cwd=WORKING_DIRECTORY,
                start_new_session=True,
                close_fds=True,
            )
            processes.append(process)
            if not isinstance(previous, int):
                previous.close()
            assert process.stdout is not None
            previous = process.stdout
    except OSError as exc:
        os.close(err_write)
        os.close(err_read)
        if not isinstance(previous, int):
            previous.close()
        _kill_groups(processes)
        for process in processes:
            process.wait()
        return _Outcome(note=f"could not start {argv[0]!r}: {exc.strerror or exc}")
    os.close(err_write)
    assert not isinstance(previous, int)
    capture = _Capture(previous.fileno(), err_read, output_cap)
    timed_out = False
    try:
        finished = capture.read_until(deadline)
        timed_out = not finished and not capture.stdout_cut
        if capture.stdout_cut or timed_out:
            _kill_groups(processes)
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_groups(processes)
                break
    finally:
        _kill_groups(processes)
        stuck = _reap(processes, grace_s=_REAP_GRACE_S)
        previous.close()
        capture.close()
    notes = _stage_notes(stages, processes, timed_out=timed_out, cut=capture.stdout_cut)
    if stuck:
        notes = "; ".join(
            filter(None, [notes, f"{', '.join(stuck)} did not die (uninterruptible sleep?)"])
        )
    return _Outcome(
        ran=True,
        exit_code=processes[-1].returncode,
        stdout=capture.text(capture.stdout, capture.stdout_cut),
        stderr=capture.text(capture.stderr, capture.stderr_cut),
        truncated=capture.stdout_cut or capture.stderr_cut,
        timed_out=timed_out,
        duration_s=round(time.monotonic() - started, 3),
        note=notes,
    )


def _stage_notes(
    stages: list[list[str]],
    processes: list[subprocess.Popen[bytes]],
    *,
    timed_out: bool,
    cut: bool,
) -> str:
    notes: list[str] = []
    if timed_out:
        notes.append("timed out; the whole pipeline was killed")
    if cut:
        notes.append("output cut at the cap; the pipeline was stopped")
    for index, (argv, process) in enumerate(zip(stages[:-1], processes[:-1], strict=True)):
        code = process.returncode
        if code not in (0, None, -signal.SIGPIPE, -signal.SIGKILL):
            notes.append(f"stage {index + 1} ({argv[0]}) exited with {code}")
    return "; ".join(notes)


class _Capture:
    """Reads the last stage's stdout and every stage's stderr, each up to the cap."""

    def __init__(self, stdout_fd: int, stderr_fd: int, cap: int) -> None:
        self.cap = cap
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_cut = False
        self.stderr_cut = False
        self._stderr_fd = stderr_fd
        self._selector = selectors.DefaultSelector()
        self._selector.register(stdout_fd, selectors.EVENT_READ, "stdout")
        self._selector.register(stderr_fd, selectors.EVENT_READ, "stderr")

    def read_until(self, deadline: float) -> bool:
        """True when both streams reached EOF (or stdout was cut) before the deadline."""
        while self._selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in self._selector.select(remaining):
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    self._selector.unregister(key.fd)
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

    def text(self, data: bytearray, cut: bool) -> str:
        decoded = redact(bytes(data).decode("utf-8", errors="replace"))
        return decoded + cut_marker(self.cap) if cut else decoded

    def close(self) -> None:
        self._selector.close()
        os.close(self._stderr_fd)
