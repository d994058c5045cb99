"""`bpfsleuth exec`: judge a command under the policy and, unless a dry run, run it."""

from __future__ import annotations

import typer

from worker.host.executor import run_command
from worker.host.redact import redact
from worker.policy import evaluate
from worker.protocol import CommandRequest, CommandResult

EXIT_CODES = {"allow": 0, "needs_approval": 3, "deny": 4}


def run_exec(
    command: list[str], *, dry_run: bool, as_json: bool, approved: bool, timeout: float | None
) -> None:
    """Exit codes: 0 allowed (and ran, or would run), 1 allowed but could not start,
    3 needs approval, 4 denied."""
    line = " ".join(command)
    decision = evaluate(line)
    runnable = decision.verdict == "allow" or (decision.verdict == "needs_approval" and approved)
    if dry_run or not runnable:
        result = CommandResult(
            id="cli",
            command=redact(line),
            verdict=decision.verdict,
            reason=redact(decision.reason),
            note="dry run" if dry_run and runnable else "",
        )
    else:
        request = CommandRequest(id="cli", command=line)
        result = run_command(request, approved=approved, timeout_s=timeout)
    if not runnable:
        exit_code = EXIT_CODES[decision.verdict]
    elif dry_run or result.ran:
        exit_code = 0
    elif result.verdict == "allow" or approved:
        exit_code = 1  # allowed, but it could not start (e.g. program not found)
    else:
        exit_code = EXIT_CODES[result.verdict]  # escalated by the executor (symlinked secret)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        raise typer.Exit(exit_code)
    typer.echo(f"verdict: {result.verdict}: {result.reason}")
    if result.ran:
        if result.stdout:
            typer.echo(result.stdout, nl=not result.stdout.endswith("\n"))
        if result.stderr:
            typer.echo(result.stderr, err=True, nl=not result.stderr.endswith("\n"))
        status = "timed out" if result.timed_out else f"exit {result.exit_code}"
        typer.echo(f"[{status} in {result.duration_s:.2f} s; sandbox: {result.sandbox}]", err=True)
    if result.note:
        typer.echo(f"note: {result.note}", err=True)
    raise typer.Exit(exit_code)
