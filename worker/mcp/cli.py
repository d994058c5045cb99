"""`bpfsleuth mcp`: serve the MCP tools (stdio by default, or streamable HTTP with a bearer
token). The SDK is imported only when run."""

from __future__ import annotations

import typer

app = typer.Typer()


@app.command("mcp")
def mcp_command(
    http: str | None = typer.Option(
        None,
        "--http",
        metavar="[HOST:]PORT",
        help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (HOST 127.0.0.1 "
        "unless given). Every request needs `Authorization: Bearer $BPFSLEUTH_MCP_TOKEN`; "
        "without the token it does not start.",
    ),
    log_level: str = typer.Option("WARNING", "--log-level", help="Logs go to stderr."),
) -> None:
    """Serve bpfsleuth's probes, flows and command sandbox as MCP tools (stdio)."""
    import logging
    import sys

    from worker.mcp.http import HttpConfigError, parse_address

    logging.basicConfig(
        stream=sys.stderr,
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if http is None:
        from worker.mcp.server import serve_stdio

        serve_stdio()
        return
    from worker.mcp.server import serve_http

    try:
        host, port = parse_address(http)
        serve_http(host, port, log_level)
    except HttpConfigError as exc:
        typer.echo(f"bpfsleuth mcp: {exc}", err=True)
        raise typer.Exit(2) from None
