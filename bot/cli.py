"""The `bpfsleuth` entry point: assembles each package's commands, plus the Slack bot's.

Each package's `cli` module imports only typer at import time, so `bpfsleuth probes ...` never
imports Slack and `bpfsleuth doctor` never imports bcc until it measures. Slack is imported only
inside the `bot` command.
"""

from __future__ import annotations

import typer

from bot.alerts import cli as alerts_cli
from probes import cli as probes_cli
from worker.cli import app as worker_cli
from worker.cli import flows as flows_cli
from worker.mcp import cli as mcp_cli

bot_app = typer.Typer(no_args_is_help=False)


@bot_app.command()
def bot(
    http: bool = typer.Option(
        False, "--http", help="Serve Slack's HTTP requests (needs SLACK_SIGNING_SECRET)."
    ),
    port: int = typer.Option(3000, "--port", help="HTTP mode: port to listen on."),
    bind: str = typer.Option("0.0.0.0", "--bind", help="HTTP mode: address to listen on."),  # noqa: S104
    workers: int = typer.Option(
        1, "--workers", min=1, max=16, help="HTTP mode: gunicorn worker processes."
    ),
    threads: int = typer.Option(
        8, "--threads", min=1, max=64, help="HTTP mode: request threads per worker process."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR."),
) -> None:
    """Run the Slack bot: Socket Mode by default (SLACK_APP_TOKEN), or --http."""
    import logging

    from worker.metrics_env import prepare

    metrics = prepare()  # before anything imports prometheus_client (multiprocess mode)
    from bot.serve.runner import run_bot

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if metrics.port:
        from worker.metrics import start_exporter

        start_exporter(metrics.port, metrics.bind)
    try:
        run_bot(http=http, bind=bind, port=port, workers=workers, threads=threads)
    except Exception as exc:  # config errors and unreachable services end with a clear line
        from bot.app import BotConfigError
        from bot.serve.runner import BotServerError

        if isinstance(exc, BotConfigError):
            typer.echo(f"bpfsleuth bot: {exc}", err=True)
            raise typer.Exit(2) from None
        if isinstance(exc, BotServerError):
            typer.echo(f"bpfsleuth bot: {exc}", err=True)
            raise typer.Exit(1) from None
        raise


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="bpfsleuth",
        help="Diagnose Linux incidents with a model, read-only commands and eBPF probes.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    for command in worker_cli.app.registered_commands:
        app.registered_commands.append(command)
    for command in bot_app.registered_commands:
        app.registered_commands.append(command)
    for command in mcp_cli.app.registered_commands:
        app.registered_commands.append(command)
    for command in alerts_cli.app.registered_commands:
        app.registered_commands.append(command)
    app.add_typer(probes_cli.app, name="probes")
    app.add_typer(flows_cli.app, name="flows")
    return app


def main() -> None:
    build_app()()
