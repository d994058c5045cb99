"""Worker-side commands of the `bpfsleuth` CLI. Heavy imports stay inside the commands."""

from __future__ import annotations

import json

import typer

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
