"""`bpfsleuth mcp` against a fleet: the SDK's stdio client asks for probes and commands on a
named worker host, and they run there through the loop's Celery path (the host's `run_plan`
task, the step join and deadline, the host's audit with the MCP client as the asker).

Real parts: redis-server, a control worker and a host worker (`bpfsleuth worker` processes,
their host name random), the probe runner on this kernel inside that worker, and a workload
connecting again and again to a closed 127.0.0.1 port under a random comm.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import Implementation

from tests.support.cluster import BPFSLEUTH, Cluster
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.workloads import refused_client
from worker.distributed.store import AUDIT_STREAM

pytestmark = [pytest.mark.ebpf, pytest.mark.redis, pytest.mark.slow]


class Fleet:
    def __init__(self, server: RedisServer, cluster: Cluster, host: str) -> None:
        self.server = server
        self.cluster = cluster
        self.host = host
        self.client = redis.Redis.from_url(server.url, decode_responses=True)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("mcp-fleet")
    server = RedisServer(directory)
    server.start()
    cluster = Cluster(server.url, directory)
    host = "w-" + secrets.token_hex(3)
    try:
        cluster.add_control()
        cluster.add_host(host)
        cluster.wait_ready()
        yield Fleet(server, cluster, host)
    finally:
        cluster.stop()
        server.stop()


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def _mcp_env(fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in fleet.cluster.env.items() if k.startswith("BPFSLEUTH_")}
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REDIS_URL": fleet.server.url,
            # the MCP server is not the worker host: every call below crosses to the worker
            "BPFSLEUTH_HOST": "mcp-" + secrets.token_hex(3),
            "BPFSLEUTH_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        }
    )
    return env


def test_probe_and_commands_run_on_a_named_worker_host(fleet: Fleet, tmp_path: Path) -> None:
    host = fleet.host
    comm = "mf" + secrets.token_hex(4)
    port = free_port()  # nothing listens on it
    client_name = "fleet-client-" + secrets.token_hex(3)
    forbidden = tmp_path / f"never-{secrets.token_hex(3)}"
    nowhere = "gone-" + secrets.token_hex(3)
    audit_before = fleet.client.xlen(AUDIT_STREAM)
    worker = fleet.cluster.workers[host]

    async def body(session: ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["hosts"] = await session.call_tool("list_hosts", {})
        out["bad_name"] = await session.call_tool(
            "run_probe", {"probe": "tcp_conect", "host": host}
        )
        out["bad_param"] = await session.call_tool(
            "run_probe", {"probe": "tcp_connect", "host": host, "params": {"nope": 1}}
        )
        out["unknown_host"] = await session.call_tool(
            "run_probe", {"probe": "tcp_connect", "host": nowhere}
        )
        out["denied"] = await session.call_tool(
            "run_command", {"command": f"touch {forbidden}", "host": host}
        )
        out["approval"] = await session.call_tool(
            "run_command", {"command": "cat /root/notes.txt", "host": host}
        )
        out["timeout"] = await session.call_tool(
            "run_command", {"command": "uname -r", "host": host, "timeout_s": 5}
        )
        out["probe"] = await session.call_tool(
            "run_probe", {"probe": "tcp_connect", "duration_s": 3, "host": host}
        )
        out["command"] = await session.call_tool(
            "run_command", {"command": "ss -tan", "host": host}
        )
        # a hung worker: its heartbeat is still fresh, but nobody takes the step
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            out["silent"] = await session.call_tool(
                "run_command", {"command": "uname -r", "host": host}
            )
            out["silent_s"] = time.monotonic() - started
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        return out

    async def session() -> dict[str, Any]:
        params = StdioServerParameters(
            command=str(BPFSLEUTH), args=["mcp"], env=_mcp_env(fleet, tmp_path)
        )
        async with (
            stdio_client(params) as (read, write),
            ClientSession(
                read, write, client_info=Implementation(name=client_name, version="1")
            ) as s,
        ):
            await s.initialize()
            return await body(s)

    with refused_client(comm, port) as workload:
        out = anyio.run(session)
    logs = fleet.cluster.logs_tail()

    hosts = {h["name"]: h for h in out["hosts"].structured_content["hosts"]}
    assert not hosts[host]["this_host"]
    assert set(hosts[host]["runs"]) == {"run_probe", "run_command", "run_flow"}

    # bad calls: clear errors, nothing sent
    assert out["bad_name"].is_error and "nearest: tcp_connect" in _text(out["bad_name"])
    assert out["bad_param"].is_error and "nope" in _text(out["bad_param"])
    text = _text(out["unknown_host"])
    assert out["unknown_host"].is_error and f"no live worker for host(s) {nowhere}" in text
    assert f"live hosts: {host}" in text
    assert out["denied"].is_error and f"denied by policy on {host}" in _text(out["denied"])
    assert not forbidden.exists()
    assert out["approval"].is_error and "needs approval" in _text(out["approval"])
    assert "/root/notes.txt" in _text(out["approval"])
    assert out["timeout"].is_error and "timeout_s" in _text(out["timeout"])

    # the probe ran in the worker and names the culprit: comm, pid, the closed port
    probe = out["probe"]
    assert not probe.is_error, _text(probe) + logs
    ran = probe.structured_content
    assert ran["host"] == host and ran["via"] == "celery"
    result = ran["result"]
    assert result["error"] is None, result
    culprit = result["aggregates"]["top"]["failures"][0]
    assert culprit["labels"]["destination"] == f"127.0.0.1:{port}"
    assert culprit["labels"]["pid"] == workload.pid
    assert culprit["labels"]["outcome"] == "refused"
    assert comm in culprit["key"]

    command = out["command"]
    assert not command.is_error, _text(command) + logs
    cmd = command.structured_content
    assert cmd["host"] == host and cmd["via"] == "celery"
    assert cmd["result"]["ran"] and cmd["result"]["exit_code"] == 0
    assert "State" in cmd["result"]["stdout"] or "LISTEN" in cmd["result"]["stdout"]

    # the hung worker: an error at the step's deadline (command timeout 3 + 2 + grace 3 s)
    silent = _text(out["silent"])
    assert out["silent"].is_error and f"host {host} did not answer within 8 s" in silent
    assert 7 < out["silent_s"] < 20

    # the audit: the worker recorded the runs, this process the refusals; all ours
    entries = [f for _id, f in fleet.client.xrange(AUDIT_STREAM)][audit_before:]
    asker = f"mcp:{client_name}"
    assert {e["asked_by"] for e in entries} == {asker}
    assert {e["host"] for e in entries} == {host}
    by_run = {e["investigation_id"]: e for e in entries}
    assert by_run[ran["run_id"]]["kind"] == "probe"
    assert by_run[ran["run_id"]]["ran"] == "True"
    assert by_run[ran["run_id"]]["argv"].startswith("tcp_connect")
    assert by_run[cmd["run_id"]]["argv"] == "ss -tan"
    assert by_run[cmd["run_id"]]["approved_by"] == "policy"
    refusals = [(e["verdict"], e["ran"]) for e in entries if e["kind"] == "command"]
    assert refusals == [
        ("deny", "False"),
        ("needs_approval", "False"),
        ("allow", "True"),
    ]

    # the control worker recorded each step and ended it without a model turn
    for run_id in (ran["run_id"], cmd["run_id"]):
        inv = _wait_done(fleet, run_id)
        assert inv.one_step and inv.turns == [] and inv.resolution is None
        assert [r.host for r in inv.results] == [host]


def _wait_done(fleet: Fleet, investigation_id: str) -> Any:
    deadline = time.monotonic() + 20
    while True:
        inv = fleet.cluster.runtime.store.load(investigation_id).investigation
        if inv.done or time.monotonic() > deadline:
            assert inv.done, fleet.cluster.logs_tail()
            return inv
        time.sleep(0.1)
