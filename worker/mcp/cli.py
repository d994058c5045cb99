"""`bpfsleuth mcp`: serve the MCP tools (stdio by default). The SDK is imported only when run."""

from __future__ import annotations

import typer

app = typer.Typer()


@app.command("mcp")
def mcp_command(
    http: bool = typer.Option(
        False,
        "--http",
        help="Serve streamable HTTP instead of stdio (no authentication: bind "
        "it to localhost or put it behind an authenticating proxy).",
    ),
    bind: str = typer.Option("127.0.0.1", "--bind", help="--http: address to listen on."),
    port: int = typer.Option(8765, "--port", help="--http: port to listen on."),
    log_level: str = typer.Option("WARNING", "--log-level", help="Logs go to stderr."),
) -> None:
    """Serve bpfsleuth's probes, flows and command sandbox as MCP tools (stdio)."""
    import logging
    import sys

    from worker.mcp.server import serve

    logging.basicConfig(
        stream=sys.stderr,
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve("streamable-http" if http else "stdio", host=bind, port=port)
