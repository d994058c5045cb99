"""The `bpfsleuth` entry point: assembles each package's commands.

Each package's `cli` module imports only typer at import time, so `bpfsleuth probes ...` never
imports Slack and `bpfsleuth doctor` never imports bcc until it measures.
"""

from __future__ import annotations

import typer

from worker import cli as worker_cli


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="bpfsleuth",
        help="Diagnose Linux incidents with a model, read-only commands and eBPF probes.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    for command in worker_cli.app.registered_commands:
        app.registered_commands.append(command)
    return app


def main() -> None:
    build_app()()
