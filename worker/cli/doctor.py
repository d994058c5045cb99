"""`bpfsleuth doctor`: what this host can do, what is missing, and how to fix each."""

from __future__ import annotations

import os
from typing import Literal

import redis
import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from probes.capabilities import HostCapabilities, detect_capabilities
from probes.catalog import load_catalog
from probes.engine.plan import availability
from worker.distributed.registry import missing_privileges
from worker.sandbox import SandboxStatus, host_status
from worker.settings import SlackEnv, WorkerSettings, get_settings

Status = Literal["ok", "missing", "warn", "info"]

_PROGRAM_TYPE_NOTES = {
    "tracepoint": "the probes' main attach point",
    "raw_tracepoint": "raw tracepoint args",
    "kprobe": "kprobes (requests for kprobe:X are mapped to tracepoint probes without them)",
    "tracing": "fentry/fexit",
    "perf_event": "CPU sampling (cpu_profile)",
    "uprobe": "user functions (getaddrinfo latency)",
}
_OPTIONAL_TYPES = {"kprobe", "tracing", "raw_tracepoint"}


class Check(BaseModel):
    name: str
    status: Status
    detail: str
    fix: str = ""


class DoctorReport(BaseModel):
    capabilities: HostCapabilities
    sandbox: SandboxStatus | None = None
    checks: list[Check] = Field(default_factory=list)

    @property
    def ready_for_probes(self) -> bool:
        caps = self.capabilities
        return (
            caps.is_root
            and caps.tracefs
            and caps.bcc_version is not None
            and caps.supports("tracepoint")
        )


def _redis_check(url: str) -> Check:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return Check(
            name="redis",
            status="warn",
            detail=f"{url} not reachable ({type(exc).__name__})",
            fix="needed by --via celery and the Slack bot: start redis-server or set REDIS_URL",
        )
    return Check(name="redis", status="ok", detail=f"{url} answers PING")


def _model_check(settings: WorkerSettings) -> Check:
    backend = settings.resolved_backend()
    if backend == "offline":
        return Check(
            name="model",
            status="info",
            detail="offline runbook planner (no ANTHROPIC_API_KEY or OPENAI_BASE_URL set)",
            fix="set ANTHROPIC_API_KEY to use Claude",
        )
    if backend == "anthropic":
        if settings.anthropic_api_key is None:
            return Check(
                name="model",
                status="missing",
                detail="BPFSLEUTH_MODEL=anthropic but ANTHROPIC_API_KEY is not set",
                fix="export ANTHROPIC_API_KEY=...",
            )
        return Check(name="model", status="ok", detail=f"anthropic {settings.anthropic_model}")
    if not settings.openai_base_url:
        return Check(
            name="model",
            status="missing",
            detail="BPFSLEUTH_MODEL=openai but OPENAI_BASE_URL is not set",
            fix="export OPENAI_BASE_URL=http://gateway:3000/openai/v1",
        )
    return Check(name="model", status="ok", detail=f"openai-compatible {settings.openai_base_url}")


def _slack_check() -> Check:
    present = SlackEnv().present()
    if not present:
        return Check(
            name="slack",
            status="info",
            detail="not configured (terminal use only)",
            fix="set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) to run the bot",
        )
    if "SLACK_BOT_TOKEN" not in present:
        return Check(
            name="slack",
            status="missing",
            detail="SLACK_BOT_TOKEN not set",
            fix="export SLACK_BOT_TOKEN=xoxb-...",
        )
    mode = "socket mode" if "SLACK_APP_TOKEN" in present else "HTTP mode"
    if mode == "HTTP mode" and "SLACK_SIGNING_SECRET" not in present:
        return Check(
            name="slack",
            status="missing",
            detail="neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET set",
            fix="set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
        )
    return Check(name="slack", status="ok", detail=f"configured for {mode}")


def _privileges_check() -> Check:
    lacking = missing_privileges()
    if not lacking:
        return Check(name="privileges", status="ok", detail="can load and attach eBPF programs")
    return Check(
        name="privileges",
        status="missing",
        detail=f"missing {', '.join(lacking)}: no probe can load (a container without privileges?)",
        fix="run the host worker container privileged (compose: privileged: true, pid: host), "
        "or with --cap-add BPF --cap-add PERFMON (kernel >= 5.8) or --cap-add SYS_ADMIN",
    )


def _capability_checks(caps: HostCapabilities) -> list[Check]:
    checks = [
        Check(
            name="root",
            status="ok" if caps.is_root else "missing",
            detail="running as root" if caps.is_root else f"uid {os.geteuid()}",
            fix="" if caps.is_root else "run as root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)",
        ),
        _privileges_check(),
        Check(
            name="tracefs",
            status="ok" if caps.tracefs else "missing",
            detail="/sys/kernel/tracing" if caps.tracefs else "not mounted",
            fix="" if caps.tracefs else "mount -t tracefs tracefs /sys/kernel/tracing",
        ),
        Check(
            name="bcc",
            status="ok" if caps.bcc_version else "missing",
            detail=f"bcc {caps.bcc_version}" if caps.bcc_version else str(caps.bcc_error),
            fix="" if caps.bcc_version else "apt-get install python3-bpfcc, then make setup",
        ),
    ]
    headers_fix = {
        "exact": "",
        "fallback": "",
        "missing": "make setup (installs linux-headers and links the fallback)",
    }[caps.headers]
    headers_detail = {
        "exact": "headers of the running kernel",
        "fallback": "fallback headers linked (sound for tracepoint-only probes)",
        "missing": f"/lib/modules/{caps.kernel}/build missing",
    }[caps.headers]
    checks.append(
        Check(
            name="kernel headers",
            status="missing" if caps.headers == "missing" else "ok",
            detail=headers_detail,
            fix=headers_fix,
        )
    )
    checks.append(
        Check(
            name="kernel",
            status="info",
            detail=f"{caps.kernel} {caps.arch}, BTF {'yes' if caps.btf else 'no'}",
        )
    )
    for ptype in ("tracepoint", "raw_tracepoint", "kprobe", "tracing", "perf_event", "uprobe"):
        ok = caps.supports(ptype)
        error = caps.program_type_errors.get(ptype, "")
        status: Status = "ok" if ok else ("warn" if ptype in _OPTIONAL_TYPES else "missing")
        checks.append(
            Check(
                name=f"bpf {ptype}",
                status=status,
                detail=_PROGRAM_TYPE_NOTES[ptype] + ("" if ok else f": {error}"),
                fix=""
                if ok or ptype in _OPTIONAL_TYPES
                else "run as root with bcc on a BPF-enabled kernel",
            )
        )
    checks.append(
        Check(
            name="tracepoints",
            status="ok" if caps.tracepoint_count else "missing",
            detail=f"{caps.tracepoint_count} in {len(caps.tracepoint_categories)} categories",
            fix="" if caps.tracepoint_count else "mount tracefs (see above)",
        )
    )
    return checks


def _catalog_checks(caps: HostCapabilities) -> list[Check]:
    """One check per catalog probe: available here, or why not."""
    catalog = load_catalog()
    checks = []
    for name in catalog.names():
        avail = availability(catalog.probes[name], caps)
        checks.append(
            Check(
                name=f"probe {name}",
                status="ok" if avail.available else "warn",
                detail=(
                    (
                        "available"
                        + (f" (without {'; '.join(avail.skipped)})" if avail.skipped else "")
                    )
                    if avail.available
                    else avail.reason
                ),
                fix="" if avail.available else "requests it answers will be refused here",
            )
        )
    for name, error in catalog.broken.items():
        checks.append(Check(name=f"probe {name}", status="missing", detail=f"broken: {error}"))
    return checks


def sandbox_check(status: SandboxStatus) -> Check:
    """The layers every command runs under here (measured by running the helper)."""
    if not status.available:
        return Check(
            name="sandbox",
            status="missing",
            detail=f"{status.reason}: this host runs no commands (probes still run)",
            fix="make setup (builds the sandbox helper with gcc); the kernel needs seccomp",
        )
    if "landlock" not in status.layers:
        return Check(
            name="sandbox",
            status="warn",
            detail=f"{status.layers} ({status.reason or 'no landlock'})",
            fix="a kernel with Landlock (5.13+, `lsm=...,landlock`) adds a read-only filesystem",
        )
    return Check(name="sandbox", status="ok", detail=status.layers)


def run_doctor(settings: WorkerSettings, *, refresh: bool = False) -> DoctorReport:
    caps = detect_capabilities(refresh=refresh)
    sandbox = host_status()
    checks = [*_capability_checks(caps), sandbox_check(sandbox), *_catalog_checks(caps)]
    checks += [_redis_check(settings.redis_url), _model_check(settings), _slack_check()]
    return DoctorReport(capabilities=caps, sandbox=sandbox, checks=checks)


_STATUS_STYLE = {"ok": "green", "missing": "red", "warn": "yellow", "info": "cyan"}


def print_doctor(as_json: bool, refresh: bool) -> None:
    """`bpfsleuth doctor`: the report as a table, or as JSON."""
    report = run_doctor(get_settings(), refresh=refresh)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    table = Table(title=f"bpfsleuth doctor: {report.capabilities.hostname}")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail")
    table.add_column("fix")
    for check in report.checks:
        style = _STATUS_STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status}[/]", check.detail, check.fix)
    Console().print(table)
