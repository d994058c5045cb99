"""MCP `run_flow` on another host: through the Celery path to that host's worker (the world's
`alpha`), audited there with the MCP client as the asker."""

from __future__ import annotations

import secrets
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import Implementation

from tests.support.bot import BPFSLEUTH
from tests.support.world import BotWorld
from worker.distributed.store import AUDIT_STREAM

pytestmark = [pytest.mark.ebpf, pytest.mark.redis, pytest.mark.slow]


def test_run_flow_on_a_live_remote_host_goes_through_its_worker(world: BotWorld) -> None:
    client_name = "remote-" + secrets.token_hex(3)
    env = {k: v for k, v in world.cluster.env.items() if k.startswith("BPFSLEUTH_") or k == "PATH"}
    env.update({"REDIS_URL": world.redis.url, "BPFSLEUTH_HOST": "mcp-" + secrets.token_hex(3)})
    before = world.client.xlen(AUDIT_STREAM)

    async def session() -> dict[str, Any]:
        params = StdioServerParameters(command=str(BPFSLEUTH), args=["mcp"], env=env)
        async with (
            stdio_client(params) as (read, write),
            ClientSession(
                read, write, client_info=Implementation(name=client_name, version="1")
            ) as s,
        ):
            await s.initialize()
            hosts = await s.call_tool("list_hosts", {})
            ran = await s.call_tool(
                "run_flow", {"flow": "network_debug", "host": "alpha"}, read_timeout_seconds=120
            )
            gone = await s.call_tool("run_flow", {"flow": "network_debug", "host": "nowhere"})
            return {"hosts": hosts, "ran": ran, "gone": gone}

    out = anyio.run(session)
    names = {h["name"]: h for h in out["hosts"].structured_content["hosts"]}
    assert names["alpha"]["runs"] == ["run_probe", "run_command", "run_flow"]
    assert not names["alpha"]["this_host"]
    ran = out["ran"]
    assert not ran.is_error, ran.content
    result = ran.structured_content
    assert result["via"] == "celery" and result["host"] == "alpha"
    assert result["resolution"] is not None
    assert out["gone"].is_error and "no live worker for host(s) nowhere" in str(out["gone"].content)
    entries = [f for _id, f in world.client.xrange(AUDIT_STREAM)][before:]
    ours = [e for e in entries if e.get("investigation_id") == result["investigation_id"]]
    assert ours and {e["host"] for e in ours} == {"alpha"}
    assert {e["asked_by"] for e in ours} == {f"mcp:{client_name}"}
