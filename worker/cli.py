"""Worker-side commands of the `bpfsleuth` CLI. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from worker.loop.investigation import Budgets, Investigation

app = typer.Typer(no_args_is_help=True)

_STATUS_STYLE = {"ok": "green", "missing": "red", "warn": "yellow", "info": "cyan"}


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    refresh: bool = typer.Option(False, "--refresh", help="Measure again, ignoring the cache."),
) -> None:
    """What this host can do, what is missing, and the fix for each."""
    from rich.console import Console
    from rich.table import Table

    from worker.doctor import run_doctor
    from worker.settings import get_settings

    report = run_doctor(get_settings(), refresh=refresh)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    table = Table(title=f"bpfsleuth doctor: {report.capabilities.hostname}")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail")
    table.add_column("fix")
    for check in report.checks:
        style = _STATUS_STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status}[/]", check.detail, check.fix)
    Console().print(table)


@app.command()
def schema(
    part: str = typer.Option("all", help="all | reply | plan_result"),
) -> None:
    """Print the protocol's JSON Schema."""
    from worker.protocol import PlanResult, protocol_json_schema, reply_json_schema

    if part == "reply":
        out = reply_json_schema()
    elif part == "plan_result":
        out = PlanResult.model_json_schema()
    elif part == "all":
        out = protocol_json_schema()
    else:
        raise typer.BadParameter("part must be all, reply or plan_result")
    typer.echo(json.dumps(out, indent=2))


# --- distributed loop (issue 5): `worker` and `hosts` -------------------------------------------
@app.command()
def worker(
    host: str | None = typer.Option(
        None, "--host", help="Run plans for this host name (queue host.NAME) and heartbeat."
    ),
    control: bool = typer.Option(
        False, "--control", help="Run the control queue (advance steps, model calls)."
    ),
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, max=64),
    pool: str = typer.Option(
        "prefork", "--pool", help="prefork (time limits enforced), solo or threads."
    ),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
) -> None:
    """Start a Celery worker: a host worker (--host NAME), the control worker, or both."""
    from worker.worker_main import WorkerRole, run_worker

    if not host and not control:
        raise typer.BadParameter("pass --host NAME, --control, or both")
    if host is not None and not host.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise typer.BadParameter("host names are letters, digits, '-', '_' and '.'")
    if pool not in {"prefork", "solo", "threads"}:
        raise typer.BadParameter("pool must be prefork, solo or threads")
    run_worker(
        WorkerRole(host=host, control=control),
        concurrency=concurrency,
        pool=pool,
        loglevel=loglevel,
    )


@app.command()
def hosts(
    as_json: bool = typer.Option(False, "--json", help="Print the hosts as JSON."),
) -> None:
    """Live hosts: heartbeat age, kernel and eBPF capabilities."""
    from rich.console import Console
    from rich.table import Table

    from worker.registry import Registry
    from worker.settings import get_settings
    from worker.store import StoreUnavailable
    from worker.worker_main import host_rows

    try:
        rows = host_rows(Registry.from_url(get_settings().redis_url).live_hosts())
    except StoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no live hosts: start one with `bpfsleuth worker --host NAME`")
        return
    table = Table(title="live hosts")
    columns = ("host", "heartbeat", "kernel", "eBPF program types", "missing", "tracepoints")
    for column in (*columns, "privileges"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            f"{row.heartbeat_age_s:.1f} s ago",
            f"{row.kernel} ({row.arch})",
            ", ".join(row.program_types) or "none",
            ", ".join(row.missing_program_types) or "-",
            str(row.tracepoints),
            f"lacks {', '.join(row.missing_privileges)}: no probes"
            if row.missing_privileges
            else "ok",
        )
    Console().print(table)


@app.command()
def diagnose(
    symptom: str = typer.Argument(..., help="What is wrong, in words."),
    model: str = typer.Option(
        "auto", "--model", help="offline | anthropic | openai (auto: from the environment)."
    ),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", min=1, max=20, help="Model steps before a final answer."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the resolution and the transcript as JSON on stdout."
    ),
    host: str | None = typer.Option(
        None, "--host", help="Name this host in the investigation (default BPFSLEUTH_HOST)."
    ),
    via: str = typer.Option(
        "process", "--via", help="process (run here) | celery (through Redis to host workers)."
    ),
    hosts: str | None = typer.Option(
        None, "--hosts", help="With --via celery: comma-separated host workers, e.g. web-1,db-1."
    ),
) -> None:
    """Investigate a symptom on this host: commands and eBPF probes until a resolution."""
    import sys

    from rich.console import Console

    from worker.loop.approver import Approver, AutoDenyApprover, TtyApprover
    from worker.loop.execute import ExecutionContext
    from worker.loop.investigation import Budgets
    from worker.loop.run import run_investigation
    from worker.loop.terminal_view import TerminalView
    from worker.models import build_backend
    from worker.models.base import ModelError
    from worker.settings import get_settings

    settings = get_settings()
    if model not in {"auto", "offline", "anthropic", "openai"}:
        raise typer.BadParameter("--model must be offline, anthropic or openai")
    if via not in {"process", "celery"}:
        raise typer.BadParameter("--via must be process or celery")
    budgets = Budgets.from_settings(settings)
    if max_iterations is not None:
        budgets = budgets.model_copy(update={"max_iterations": max_iterations})
    if via == "celery":  # distributed loop (issue 5): the control worker runs the model
        inv = _diagnose_via_celery(symptom, hosts or host or settings.host_name, budgets, as_json)
        _print_outcome(inv, as_json, Console(stderr=as_json))
        return
    try:
        backend = build_backend(settings, model)
    except ModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    console = Console(stderr=as_json)
    view = TerminalView(console)
    approver: Approver = TtyApprover() if sys.stdin.isatty() else AutoDenyApprover()
    name = host or settings.host_name
    console.print(f"[bold]bpfsleuth[/] investigating on {name} with the {backend.name} model")
    try:
        inv = run_investigation(
            symptom,
            [name],
            backend,
            budgets=budgets,
            context=ExecutionContext(approver=approver, on_event=view),
        )
    except KeyboardInterrupt:
        view.close()
        typer.echo("interrupted: probes detached, investigation cancelled", err=True)
        raise typer.Exit(130) from None
    finally:
        view.close()
    _print_outcome(inv, as_json, console)


def _print_outcome(inv: Investigation, as_json: bool, console: Console) -> None:
    usage = inv.token_usage
    console.print(
        f"[dim]{inv.step} model step(s), {usage.total} tokens "
        f"({usage.cache_read_input_tokens} read from cache), {inv.elapsed_s:.1f} s[/]"
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "resolution": inv.resolution.model_dump(mode="json")
                    if inv.resolution
                    else None,
                    "resolution_source": inv.resolution_source,
                    "stop_reason": inv.stop_reason,
                    "token_usage": usage.model_dump(),
                    "transcript": inv.model_dump(mode="json"),
                },
                indent=2,
            )
        )


@app.command()
def demo(
    max_iterations: int = typer.Option(4, "--max-iterations", min=2, max=20),
) -> None:
    """A short demo: a client that cannot reach its backend starts, `diagnose` runs offline
    against it on this host, the resolution is printed, and the client is stopped."""
    import os

    from rich.console import Console

    from worker.demo import SYMPTOM, faulty_workload
    from worker.loop.execute import ExecutionContext
    from worker.loop.investigation import Budgets
    from worker.loop.run import run_investigation
    from worker.loop.terminal_view import TerminalView
    from worker.models.offline import OfflineBackend
    from worker.settings import get_settings

    console = Console()
    if os.geteuid() != 0:
        console.print("[yellow]not root: the eBPF probes will be refused; commands still run[/]")
    name = get_settings().host_name
    view = TerminalView(console)
    try:
        with faulty_workload() as workload:
            console.print(
                f"[bold]demo[/]: started {workload.comm} (pid {workload.pid}), which keeps "
                f"connecting to 127.0.0.1:{workload.port} where nothing listens"
            )
            console.print(f'[bold]bpfsleuth diagnose[/] "{SYMPTOM}" --model offline')
            inv = run_investigation(
                SYMPTOM,
                [name],
                OfflineBackend(),
                budgets=Budgets(max_iterations=max_iterations),
                context=ExecutionContext(on_event=view),
            )
    except KeyboardInterrupt:
        view.close()
        typer.echo("interrupted: workload stopped, probes detached", err=True)
        raise typer.Exit(130) from None
    finally:
        view.close()
    _print_outcome(inv, False, console)
    found = inv.resolution is not None and f"pid {workload.pid}" in inv.resolution.root_cause
    verdict = "named" if found else "did not name"
    console.print(
        f"demo: the resolution {verdict} {workload.comm} (pid {workload.pid}) "
        f"and port {workload.port}; workload stopped. Try your own: "
        'bpfsleuth diagnose "<symptom>"'
    )


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def eval_command(ctx: typer.Context) -> None:
    """Run the fault eval (bench/eval in a source checkout): real faults on this host, scored.
    Every option goes to `python -m bench.eval` (try `bpfsleuth eval --help`)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "eval" / "__main__.py").exists():
        typer.echo("the eval lives in the source tree (bench/eval): run it from a clone", err=True)
        raise typer.Exit(2)
    done = subprocess.run([sys.executable, "-m", "bench.eval", *ctx.args], cwd=root, check=False)
    raise typer.Exit(done.returncode)


_EXEC_EXIT = {"allow": 0, "needs_approval": 3, "deny": 4}


@app.command("exec")
def exec_command(
    command: list[str] = typer.Argument(
        ..., help="The command line, one quoted argument: -- 'ss -tlnp | grep :5432'"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the verdict."),
    as_json: bool = typer.Option(False, "--json", help="Print the CommandResult as JSON."),
    approved: bool = typer.Option(
        False, "--approved", help="Run a needs_approval command (as an approver would)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, max=60, help="Seconds (default from settings, max 60)."
    ),
) -> None:
    """Judge a command under the policy and, unless --dry-run, run it if allowed.

    Exit codes: 0 allowed (and ran, or would run), 1 allowed but could not start,
    3 needs approval, 4 denied.
    """
    from worker.executor import run_command
    from worker.policy import evaluate
    from worker.protocol import CommandRequest, CommandResult
    from worker.redact import redact

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
        exit_code = _EXEC_EXIT[decision.verdict]
    elif dry_run or result.ran:
        exit_code = 0
    elif result.verdict == "allow" or approved:
        exit_code = 1  # allowed, but it could not start (e.g. program not found)
    else:
        exit_code = _EXEC_EXIT[result.verdict]  # escalated by the executor (symlinked secret)
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


def _diagnose_via_celery(
    symptom: str, hosts: str, budgets: Budgets, as_json: bool
) -> Investigation:
    """`diagnose --via celery`: start through the broker, render the progress stream live."""
    from rich.console import Console

    from worker.distributed import FollowError, HostNotLive, run_via_celery
    from worker.loop.terminal_view import TerminalView

    names = [name.strip() for name in hosts.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("--hosts needs at least one host name")
    console = Console(stderr=as_json)
    view = TerminalView(console)
    console.print(f"[bold]bpfsleuth[/] investigating on {', '.join(names)} through Celery")
    try:
        return run_via_celery(symptom, names, view, budgets=budgets)
    except (HostNotLive, FollowError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        typer.echo("detached: the investigation goes on on the workers", err=True)
        raise typer.Exit(130) from None
    finally:
        view.close()
