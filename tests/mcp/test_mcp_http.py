"""`bpfsleuth mcp --http`: the SDK's streamable-HTTP client against the real server process,
with the bearer token, with a wrong one, and the refusals to start without one."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

from tests.support.cluster import BPFSLEUTH
from tests.support.ports import free_port
from worker.mcp.http import HttpConfigError, is_loopback, parse_address

START_TIMEOUT_S = 30.0


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # no Redis there: the audit goes to the local file
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "BPFSLEUTH_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        **extra,
    }


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bpfsleuth mcp exited:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"bpfsleuth mcp --http never listened:\n{log.read_text()[-3000:]}")


class HttpServer:
    def __init__(self, url: str, token: str, audit: Path) -> None:
        self.url = url
        self.token = token
        self.audit = audit


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    tmp_path = tmp_path_factory.mktemp("mcp-http")
    port = free_port()
    token = secrets.token_urlsafe(24)
    log = tmp_path / "mcp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BPFSLEUTH), "mcp", "--http", f"127.0.0.1:{port}"],
            env=_env(tmp_path, BPFSLEUTH_MCP_TOKEN=token),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, log)
        yield HttpServer(f"http://127.0.0.1:{port}/mcp", token, tmp_path / "audit.jsonl")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _session(url: str, token: str, client_name: str, body: Any) -> Any:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(
            read, write, client_info=Implementation(name=client_name, version="1")
        ) as session,
    ):
        await session.initialize()
        return await body(session)


def test_the_token_lets_a_client_list_and_call_tools(http_server: HttpServer) -> None:
    client_name = "http-client-" + secrets.token_hex(3)

    async def body(session: ClientSession) -> dict[str, Any]:
        tools = await session.list_tools()
        ran = await session.call_tool("run_command", {"command": "uname -r"})
        bad = await session.call_tool("run_probe", {"probe": "no_such_probe_" + client_name})
        return {"tools": {t.name for t in tools.tools}, "ran": ran, "bad": bad}

    out = anyio.run(_session, http_server.url, http_server.token, client_name, body)
    assert {"list_hosts", "run_probe", "run_command", "run_flow"} <= out["tools"]
    ran = out["ran"]
    assert not ran.is_error, ran.content
    result = ran.structured_content["result"]
    assert result["ran"] and result["exit_code"] == 0
    assert result["stdout"].strip() == os.uname().release
    assert out["bad"].is_error and "no probe named" in str(out["bad"].content)
    entries = [json.loads(line) for line in http_server.audit.read_text().splitlines()]
    ours = [e for e in entries if e["asked_by"] == f"mcp:{client_name}"]
    assert [(e["argv"], e["ran"]) for e in ours] == [("uname -r", True)]


@pytest.mark.parametrize("header", ["wrong", "none", "basic"])
def test_a_wrong_or_missing_token_is_refused(http_server: HttpServer, header: str) -> None:
    headers = {
        "wrong": {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"},
        "none": {},
        "basic": {"Authorization": f"Basic {http_server.token}"},
    }[header]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "intruder", "version": "1"},
        },
    }
    response = httpx2.post(
        http_server.url,
        json=initialize,
        headers={**headers, "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "invalid_token"

    async def body(session: ClientSession) -> Any:
        return await session.list_tools()

    wrong = secrets.token_urlsafe(24)
    # the SDK's own client gets the refusal as an error and no session
    with pytest.raises(ExceptionGroup) as refused:
        anyio.run(_session, http_server.url, wrong, "intruder", body)
    assert refused.group_contains(MCPError, match="error response", depth=2)


@pytest.mark.parametrize(
    ("address", "token", "says"),
    [
        ("0.0.0.0:{port}", None, "non-loopback address 0.0.0.0: set BPFSLEUTH_MCP_TOKEN"),
        ("{port}", None, "loopback: set BPFSLEUTH_MCP_TOKEN"),
        ("127.0.0.1:{port}", "short", "use at least 16"),
        ("127.0.0.1:99999", "x" * 20, "expected PORT or HOST:PORT"),
    ],
)
def test_it_does_not_start_without_a_usable_token(
    tmp_path: Path, address: str, token: str | None, says: str
) -> None:
    port = free_port()
    extra = {"BPFSLEUTH_MCP_TOKEN": token} if token is not None else {}
    done = subprocess.run(
        [str(BPFSLEUTH), "mcp", "--http", address.format(port=port)],
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        pass


def test_addresses() -> None:
    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address(":8765") == ("127.0.0.1", 8765)
    assert parse_address("10.1.2.3:80") == ("10.1.2.3", 80)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("", "host:", "host:0", "a:b"):
        with pytest.raises(HttpConfigError):
            parse_address(bad)
    assert is_loopback("127.0.0.9") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")
