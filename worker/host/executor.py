"""Run one command under the policy: argv pipelines without a shell, bounded and redacted.

The only way a model's command ever runs on a host. `run_command` asks the policy first; a
`deny` never runs, `needs_approval` runs only with `approved=True`. Stages are joined by OS pipes
between subprocesses, each started by the sandbox (worker/sandbox: seccomp, Landlock,
capabilities, rlimits) in its own process group with a clean environment, stdin from /dev/null
and `/` as working directory; if the sandbox cannot be set up, nothing runs. When the pipeline
ends every stage's group is killed and reaped. Output beyond the cap is cut with a visible
marker; stdout and stderr are redacted.
"""

from __future__ import annotations

import os
import posixpath
import shutil

from pydantic import BaseModel

from worker.host.redact import redact
from worker.policy import SYSTEM_BIN_DIRS, evaluate
from worker.policy.paths import PathFinding, worst_path_finding
from worker.policy.programs import NEVER_EXECUTE_TARGETS
from worker.protocol import CommandRequest, CommandResult
from worker.sandbox import Stage, run_pipeline
from worker.settings import get_settings

CLEAN_PATH = ":".join(SYSTEM_BIN_DIRS)
CLEAN_ENV = {"PATH": CLEAN_PATH, "LANG": "C", "LC_ALL": "C"}
WORKING_DIRECTORY = "/"
MAX_TIMEOUT_S = 60.0


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
    sandbox: str = ""


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


def _run_pipeline(stages: list[list[str]], *, timeout_s: float, output_cap: int) -> _Outcome:
    """Every stage runs in the sandbox (worker/sandbox); without it, nothing runs."""
    try:
        resolved = [Stage(path=_resolve(argv[0]), argv=argv) for argv in stages]
    except _Refusal as exc:
        return _Outcome(note=str(exc))
    outcome = run_pipeline(resolved, timeout_s=timeout_s, output_cap=output_cap, env=CLEAN_ENV)
    return _Outcome(
        ran=outcome.ran,
        exit_code=outcome.exit_code,
        stdout=_text(outcome.stdout, outcome.stdout_cut, output_cap),
        stderr=_text(outcome.stderr, outcome.stderr_cut, output_cap),
        truncated=outcome.stdout_cut or outcome.stderr_cut,
        timed_out=outcome.timed_out,
        duration_s=outcome.duration_s,
        note=outcome.note,
        sandbox=outcome.sandbox,
    )


def _text(data: bytes, cut: bool, cap: int) -> str:
    decoded = redact(data.decode("utf-8", errors="replace"))
    return decoded + cut_marker(cap) if cut else decoded
