"""The MCP server: `worker.mcp.tools` registered on the official SDK's `MCPServer`.

Tools are sync functions (probes, flows and commands block for seconds); each call runs in a
worker thread, at most `BPFSLEUTH_MCP_CONCURRENCY` runs at once. Arguments are validated by the
SDK against the typed signatures below (a bad type or an out-of-range value never reaches a
tool); a `ToolProblem` (refused, or sent and failed) becomes a tool error (`is_error`)
carrying its message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.types import ASGIApp

from probes.models import COMM_MAX_LEN, MAX_PROBE_DURATION_S, PID_MAX, ParamValue
from worker.mcp import tools
from worker.mcp.http import BearerGate, check_token
from worker.mcp.tools import Toolbox, ToolProblem

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTRUCTIONS = (
    "bpfsleuth looks inside Linux hosts, read-only: eBPF probes from a reviewed catalog "
    "(list_probes, describe_probe, run_probe), diagnostic flows (list_flows, describe_flow, "
    "run_flow) and shell-like commands judged by a read-only policy (run_command; no shell, "
    "no approvals: a command that needs one is refused with the reason). Results are bounded "
    "and redacted. Every run is audited with this client as the asker."
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)

HostArg = Annotated[
    str,
    Field(
        default="",
        max_length=253,
        description="Host name from list_hosts; empty for the host serving this server. "
        "Another live host runs the call through its bpfsleuth worker.",
    ),
]


def _asker(ctx: Context) -> str:
    params = ctx.session.client_params
    name = params.client_info.name if params is not None else None
    return tools.asker_name(name)


class _Caller:
    """Runs a tool function in a worker thread (the heavy ones, probes, flows and commands,
    at most `concurrent_runs` at once) and turns a `ToolProblem` into the SDK's tool error."""

    def __init__(self, concurrent_runs: int) -> None:
        self.limiter = anyio.CapacityLimiter(concurrent_runs)

    async def __call__(self, fn: Callable[[], T], *, heavy: bool = False) -> T:
        try:
            if heavy:
                return await anyio.to_thread.run_sync(fn, limiter=self.limiter)
            return await anyio.to_thread.run_sync(fn)
        except ToolProblem as exc:
            raise ToolError(str(exc)) from None


def build_server(box: Toolbox | None = None) -> MCPServer:
    box = box or Toolbox()
    call = _Caller(box.settings.concurrent_runs)
    server = MCPServer(name="bpfsleuth", instructions=INSTRUCTIONS, version="0.1.0")
    _add_probe_tools(server, box, call)
    _add_flow_tools(server, box, call)
    _add_command_tools(server, box, call)
    return server


def _add_probe_tools(server: MCPServer, box: Toolbox, call: _Caller) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_hosts() -> tools.HostList:
        """This host and the live bpfsleuth worker hosts (from Redis, when reachable)."""
        return await call(lambda: tools.list_hosts(box))

    @server.tool(annotations=READ_ONLY)
    async def list_probes() -> tools.ProbeList:
        """The eBPF probe catalog: what each probe answers and whether it can run here."""
        return await call(lambda: tools.list_probes(box))

    @server.tool(annotations=READ_ONLY)
    async def describe_probe(
        name: Annotated[str, Field(min_length=1, max_length=64, description="Probe name.")],
    ) -> tools.ProbeDescription:
        """A probe's spec (parameters, filters, duration bounds) and where it attaches here."""
        return await call(lambda: tools.describe_probe(box, name))

    @server.tool(annotations=READ_ONLY)
    async def run_probe(
        ctx: Context,
        probe: Annotated[str, Field(min_length=1, max_length=64, description="Probe name.")],
        duration_s: Annotated[
            float | None,
            Field(
                gt=0,
                le=MAX_PROBE_DURATION_S,
                description="Seconds; the probe's default if omitted.",
            ),
        ] = None,
        host: HostArg = "",
        pid: Annotated[
            int | None, Field(ge=1, le=PID_MAX, description="Only this process.")
        ] = None,
        comm: Annotated[
            str | None, Field(min_length=1, max_length=COMM_MAX_LEN, description="Only this comm.")
        ] = None,
        params: Annotated[
            dict[str, ParamValue] | None,
            Field(description="Probe parameters (see describe_probe)."),
        ] = None,
    ) -> tools.ProbeRun:
        """Run one catalog eBPF probe for a while, on this host or a live worker host;
        returns its bounded result."""
        asker = _asker(ctx)
        return await call(
            lambda: tools.run_probe(
                box,
                asker,
                probe=probe,
                duration_s=duration_s,
                host=host,
                pid=pid,
                comm=comm,
                params=params,
            ),
            heavy=True,
        )


def _add_flow_tools(server: MCPServer, box: Toolbox, call: _Caller) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_flows() -> tools.FlowList:
        """Diagnostic flows: named sets of probes, commands and analyses for one symptom."""
        return await call(lambda: tools.list_flows(box))

    @server.tool(annotations=READ_ONLY)
    async def describe_flow(
        name: Annotated[str, Field(min_length=1, max_length=40, description="Flow name.")],
    ) -> tools.FlowDescription:
        """A flow's steps."""
        return await call(lambda: tools.describe_flow(box, name))

    @server.tool(annotations=READ_ONLY)
    async def run_flow(
        ctx: Context,
        flow: Annotated[str, Field(min_length=1, max_length=40, description="Flow name.")],
        host: HostArg = "",
        symptom: Annotated[str, Field(max_length=2000, description="What is wrong.")] = "",
    ) -> tools.FlowRunResult:
        """Run a flow on this host, or on another live host through its worker (Celery)."""
        asker = _asker(ctx)
        return await call(
            lambda: tools.run_flow(box, asker, flow=flow, host=host, symptom=symptom), heavy=True
        )


def _add_command_tools(server: MCPServer, box: Toolbox, call: _Caller) -> None:
    @server.tool(annotations=READ_ONLY)
    async def run_command(
        ctx: Context,
        command: Annotated[
            str,
            Field(min_length=1, max_length=2000, description="e.g. 'ss -tnp' (pipes allowed)."),
        ],
        host: HostArg = "",
        timeout_s: Annotated[
            float | None, Field(gt=0, le=60, description="Seconds; this host only.")
        ] = None,
    ) -> tools.CommandRun:
        """Run a read-only command under bpfsleuth's policy, without a shell, on this host or
        a live worker host. Denied commands and those that need a responder's approval are
        refused with the reason."""
        asker = _asker(ctx)
        return await call(
            lambda: tools.run_command(box, asker, command=command, host=host, timeout_s=timeout_s),
            heavy=True,
        )


def serve_stdio() -> None:
    build_server().run("stdio")


def http_app(box: Toolbox, host: str) -> ASGIApp:
    """The SDK's streamable-HTTP app at `/mcp`, behind the bearer token (`HttpConfigError`
    when none is set)."""
    token = check_token(box.settings.token.get_secret_value() if box.settings.token else None, host)
    return BearerGate(build_server(box).streamable_http_app(host=host), token)


def serve_http(host: str, port: int, log_level: str = "warning") -> None:
    app = http_app(Toolbox(), host)
    log.warning("bpfsleuth mcp: streamable HTTP on http://%s:%d/mcp (bearer token)", host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
