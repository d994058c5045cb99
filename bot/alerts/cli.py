"""`bpfsleuth alerts --port P`: the Alertmanager receiver on its own (Socket-Mode deployments).

The bot (Socket Mode) renders the threads it starts: both use the same Redis. Imports of Slack,
Starlette and uvicorn happen only when it runs.
"""

from __future__ import annotations

import typer

app = typer.Typer()


@app.command("alerts")
def alerts_command(
    port: int = typer.Option(9095, "--port", help="Port to listen on."),
    bind: str = typer.Option("0.0.0.0", "--bind", help="Address to listen on."),  # noqa: S104
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR."),
) -> None:
    """Receive Alertmanager webhooks at /alerts and start investigations in Slack threads."""
    import logging

    from worker.metrics_env import prepare

    metrics = prepare()  # before anything imports prometheus_client, as in `bpfsleuth bot`
    import uvicorn

    from bot.alerts.server import build_standalone

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if metrics.port:  # the investigations it starts and its Slack calls are counted here
        from worker.metrics import start_exporter

        start_exporter(metrics.port, metrics.bind)
    try:
        asgi = build_standalone()
    except ValueError as exc:
        typer.echo(f"bpfsleuth alerts: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.getLogger(__name__).info("alerts receiver listening on %s:%s", bind, port)
    uvicorn.run(asgi, host=bind, port=port, log_level=log_level.lower(), access_log=False)
