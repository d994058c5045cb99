"""`bpfsleuth mcp` end to end, with the MCP SDK's own stdio client and real parts: the probe
runner on this kernel, the policy and executor, and a real Redis for the audit stream.

The workload connects, again and again, to a 127.0.0.1 port nobody listens on, under a comm
chosen at random; the client asks for `tcp_connect` and must get that comm, pid and port back.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import Implementation

from tests.support.paths import BPFSLEUTH, REPO
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.workloads import refused_client
from worker.distributed.store import AUDIT_STREAM


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def _session(env: dict[str, str], client_name: str, body: Any) -> Any:
    params = StdioServerParameters(command=str(BPFSLEUTH), args=["mcp"], env=env, cwd=str(REPO))
    async with (
        stdio_client(params) as (read, write),
        ClientSession(
            read, write, client_info=Implementation(name=client_name, version="1")
        ) as session,
    ):
        await session.initialize()
        return await body(session)


@pytest.mark.ebpf
@pytest.mark.redis
def test_mcp_tools_find_the_closed_port_and_refuse_bad_calls(
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    comm = "mc" + secrets.token_hex(4)
    port = free_port()  # nothing listens on it once free_port returns
    client_name = "test-client-" + secrets.token_hex(3)
    forbidden = tmp_path / f"never-{secrets.token_hex(3)}"
    env = {
        "REDIS_URL": redis_server.url,
        "BPFSLEUTH_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.delete(AUDIT_STREAM)
    with refused_client(comm, port) as workload:

        async def body(session: ClientSession) -> dict[str, Any]:
            out: dict[str, Any] = {}
            listed = await session.list_tools()
            out["tools"] = {tool.name for tool in listed.tools}
            out["hosts"] = await session.call_tool("list_hosts", {})
            out["bad_name"] = await session.call_tool("run_probe", {"probe": "tcp_conect"})
            out["too_long"] = await session.call_tool(
                "run_probe", {"probe": "tcp_connect", "duration_s": 600}
            )
            out["audit_before"] = client.xlen(AUDIT_STREAM)
            out["denied"] = await session.call_tool(
                "run_command", {"command": f"touch {forbidden}"}
            )
            out["approval"] = await session.call_tool(
                "run_command", {"command": "cat /root/notes.txt"}
            )
            out["remote"] = await session.call_tool(
                "run_probe", {"probe": "tcp_connect", "host": "no-such-host"}
            )
            out["probe"] = await session.call_tool(
                "run_probe", {"probe": "tcp_connect", "duration_s": 2}
            )
            out["command"] = await session.call_tool("run_command", {"command": "ss -tan"})
            return out

        out = anyio.run(_session, env, client_name, body)

    assert {
        "list_hosts",
        "list_probes",
        "describe_probe",
        "run_probe",
        "list_flows",
        "describe_flow",
        "run_flow",
        "run_command",
    } <= out["tools"]
    hosts = out["hosts"].structured_content["hosts"]
    assert hosts[0]["this_host"] is True

    # malformed calls: a clear error, nothing run, nothing recorded
    assert out["bad_name"].is_error and "nearest: tcp_connect" in _text(out["bad_name"])
    assert out["too_long"].is_error and "duration_s" in _text(out["too_long"])
    assert out["audit_before"] == 0
    assert out["denied"].is_error and "denied by policy" in _text(out["denied"])
    assert not forbidden.exists()
    assert out["approval"].is_error and "approval" in _text(out["approval"])
    assert "/root/notes.txt" in _text(out["approval"])
    remote = _text(out["remote"])
    assert out["remote"].is_error
    assert "no live worker for host(s) no-such-host (live hosts: none)" in remote

    # the probe names the culprit: comm, pid and the closed port
    probe = out["probe"]
    assert not probe.is_error, _text(probe)
    result = probe.structured_content["result"]
    assert result["error"] is None
    culprit = result["aggregates"]["top"]["failures"][0]
    assert culprit["labels"]["destination"] == f"127.0.0.1:{port}"
    assert culprit["labels"]["pid"] == workload.pid
    assert culprit["labels"]["outcome"] == "refused"
    assert comm in culprit["key"]
    assert f"127.0.0.1:{port}" in result["summary"]
    assert len(json.dumps(result)) < 4000  # the loop's probe budget, not the raw result

    cmd = out["command"].structured_content["result"]
    assert cmd["ran"] and cmd["exit_code"] == 0

    # the audit: refusals and runs, with this client as the asker; in Redis, not the file
    entries = [fields for _id, fields in client.xrange(AUDIT_STREAM)]
    assert [(e["kind"], e["verdict"], e["ran"]) for e in entries] == [
        ("command", "deny", "False"),
        ("command", "needs_approval", "False"),
        ("probe", "allow", "True"),
        ("command", "allow", "True"),
    ]
    assert {e["asked_by"] for e in entries} == {f"mcp:{client_name}"}
    assert entries[2]["argv"].startswith("tcp_connect duration=2s")
    assert not (tmp_path / "audit.jsonl").exists()


def test_without_redis_the_audit_goes_to_the_local_file(tmp_path: Path) -> None:
    from worker.mcp.settings import McpSettings
    from worker.mcp.tools import Toolbox, ToolRefused, run_command
    from worker.settings import WorkerSettings

    log = tmp_path / "state" / "audit.jsonl"
    box = Toolbox(
        settings=McpSettings(BPFSLEUTH_MCP_AUDIT_LOG=log),
        worker=WorkerSettings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"),
    )
    asker = "mcp:" + secrets.token_hex(4)
    ran = run_command(box, asker, command="uname -r")
    assert ran.result.ran and ran.audit == f"local audit log {log}"
    with pytest.raises(ToolRefused, match="denied by policy"):
        run_command(box, asker, command="rm -rf /nonexistent")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["argv"], e["verdict"], e["ran"], e["asked_by"]) for e in lines] == [
        ("uname -r", "allow", True, asker),
        ("rm -rf /nonexistent", "deny", False, asker),
    ]
