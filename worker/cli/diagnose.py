"""`bpfsleuth diagnose` and `bpfsleuth demo`: the loop on this host, or through Celery."""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console

from worker.backends.base import ModelError
from worker.backends.factory import build_backend
from worker.backends.offline.planner import OfflineBackend
from worker.cli.demo import SYMPTOM, faulty_workload
from worker.cli.terminal_view import TerminalView
from worker.distributed.follow import FollowError, run_via_celery
from worker.distributed.registry import HostNotLive
from worker.host.approver import Approver, AutoDenyApprover, TtyApprover
from worker.host.execute import ExecutionContext
from worker.loop.investigation import Budgets, Investigation
from worker.loop.run import run_investigation
from worker.settings import get_settings


def diagnose(
    symptom: str,
    *,
    model: str,
    max_iterations: int | None,
    as_json: bool,
    host: str | None,
    via: str,
    hosts: str | None,
) -> None:
    """Investigate `symptom` here (`via` "process") or on host workers (`via` "celery")."""
    settings = get_settings()
    budgets = Budgets.from_settings(settings)
    if max_iterations is not None:
        budgets = budgets.model_copy(update={"max_iterations": max_iterations})
    if via == "celery":  # distributed loop (issue 5): the control worker runs the model
        inv = diagnose_via_celery(symptom, hosts or host or settings.host_name, budgets, as_json)
        print_outcome(inv, as_json, Console(stderr=as_json))
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
    print_outcome(inv, as_json, console)


def print_outcome(inv: Investigation, as_json: bool, console: Console) -> None:
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


def demo(max_iterations: int) -> None:
    """The demo fault started, investigated offline here, and stopped."""
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
    print_outcome(inv, False, console)
    found = inv.resolution is not None and f"pid {workload.pid}" in inv.resolution.root_cause
    verdict = "named" if found else "did not name"
    console.print(
        f"demo: the resolution {verdict} {workload.comm} (pid {workload.pid}) "
        f"and port {workload.port}; workload stopped. Try your own: "
        'bpfsleuth diagnose "<symptom>"'
    )


def diagnose_via_celery(symptom: str, hosts: str, budgets: Budgets, as_json: bool) -> Investigation:
    """`diagnose --via celery`: start through the broker, render the progress stream live."""
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
