"""`bpfsleuth worker` and `bpfsleuth hosts`: run a worker in a role, list the live hosts."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from worker.distributed.registry import Registry, host_rows
from worker.distributed.roles import WorkerRole, run_worker
from worker.distributed.store import StoreUnavailable
from worker.metrics_env import cleanup
from worker.settings import MetricsSettings, get_settings


def start_worker(
    role: WorkerRole, *, concurrency: int, pool: str, loglevel: str, metrics: MetricsSettings
) -> None:
    """Run the Celery worker until it stops, then remove the metrics directory it made."""
    try:
        run_worker(role, concurrency=concurrency, pool=pool, loglevel=loglevel, metrics=metrics)
    finally:
        cleanup(metrics)


def print_hosts(as_json: bool) -> None:
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
