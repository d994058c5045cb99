"""Streamable HTTP for `bpfsleuth mcp --http HOST:PORT`: the SDK's app behind a bearer token.

The server runs as root and runs probes and commands: over HTTP every request must carry
`Authorization: Bearer <BPFSLEUTH_MCP_TOKEN>` (compared in constant time); without a token set
the server does not start, on any address. It listens on 127.0.0.1 unless told otherwise; on
loopback the SDK's DNS-rebinding protection (Host and Origin checks) is on as well.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_HOST = "127.0.0.1"
MIN_TOKEN_CHARS = 16


class HttpConfigError(ValueError):
    """`--http` cannot start as asked; the message says what to change."""


def parse_address(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[V6]:PORT` -> (host, port); the host defaults to 127.0.0.1."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HttpConfigError(f"--http {text!r}: expected PORT or HOST:PORT (port 1-65535)")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, host: str) -> str:
    """The token to require, or `HttpConfigError` when there is none (or it is too short)."""
    where = "loopback" if is_loopback(host) else f"non-loopback address {host}"
    if not token:
        raise HttpConfigError(
            f"--http on {where}: set BPFSLEUTH_MCP_TOKEN (a random secret of at least "
            f"{MIN_TOKEN_CHARS} characters); clients send it as `Authorization: Bearer ...`"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise HttpConfigError(
            f"BPFSLEUTH_MCP_TOKEN is {len(token)} characters; use at least {MIN_TOKEN_CHARS}"
        )
    return token


class BearerGate:
    """ASGI middleware: an HTTP request without the right bearer token gets 401 and goes no
    further (lifespan events pass through, so the SDK's session manager starts and stops)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                refusal = JSONResponse(
                    {"error": "invalid_token", "error_description": "missing or wrong token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
