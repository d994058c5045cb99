"""What this host's kernel lets eBPF do, measured once and cached.

Program types are tested by loading and attaching tiny programs, not by reading config: a kernel
can ship the `kprobe` program type and still have no kprobes (CONFIG_KPROBES off), as here.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from probes.settings import probe_settings

TRACEFS = Path("/sys/kernel/tracing")
PROGRAM_TYPES = ("tracepoint", "raw_tracepoint", "kprobe", "tracing", "perf_event", "uprobe")

_ATTACH_TEST_C = r"""
#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf_perf_event.h>
int on_tp(void *ctx) { return 0; }
int on_raw(void *ctx) { return 0; }
int on_kprobe(struct pt_regs *ctx) { return 0; }
int on_perf(struct bpf_perf_event_data *ctx) { return 0; }
int on_uprobe(struct pt_regs *ctx) { return 0; }
"""
_FENTRY_TEST_C = "KFUNC_PROBE(do_sys_openat2) { return 0; }"


class HostCapabilities(BaseModel):
    """A host's eBPF facts, published to the model and the host registry."""

    hostname: str
    kernel: str
    arch: str
    is_root: bool
    tracefs: bool
    btf: bool
    bcc_version: str | None = None
    bcc_error: str | None = None
    headers: str = Field(default="missing", description="exact | fallback | missing")
    program_types: dict[str, bool] = Field(default_factory=dict)
    program_type_errors: dict[str, str] = Field(default_factory=dict)
    tracepoint_count: int = 0
    tracepoint_categories: list[str] = Field(default_factory=list)
    measured_at: float = 0.0

    def supports(self, program_type: str) -> bool:
        return self.program_types.get(program_type, False)

    def has_tracepoint(self, category: str, name: str) -> bool:
        return (TRACEFS / "events" / category / name / "format").exists()


def tracefs_mounted() -> bool:
    return (TRACEFS / "events").is_dir()


def tracepoint_inventory() -> tuple[int, list[str]]:
    events = TRACEFS / "events"
    if not events.is_dir():
        return 0, []
    categories = sorted(p.name for p in events.iterdir() if p.is_dir())
    count = sum(1 for c in categories for p in (events / c).iterdir() if (p / "format").exists())
    return count, categories


def headers_kind(kernel: str) -> str:
    """`exact` when the headers are the running kernel's, `fallback` when linked from another."""
    build = Path("/lib/modules") / kernel / "build"
    if not build.exists():
        return "missing"
    target = build.resolve().name
    return "exact" if kernel in target else "fallback"


def _bcc_version() -> tuple[str | None, str | None]:
    try:
        import bcc
    except Exception as exc:  # ImportError, or libbcc failing to load
        return None, f"{type(exc).__name__}: {exc}"
    return str(getattr(bcc, "__version__", "unknown")), None


def _test_program_types() -> tuple[dict[str, bool], dict[str, str]]:
    from bcc import BPF, PerfSWConfig, PerfType

    ok: dict[str, bool] = dict.fromkeys(PROGRAM_TYPES, False)
    errors: dict[str, str] = {}
    try:
        bpf = BPF(text=_ATTACH_TEST_C)
    except Exception as exc:
        message = f"compile failed: {exc}"
        return ok, dict.fromkeys(PROGRAM_TYPES, message)
    attempts: dict[str, Callable[[], object]] = {
        "tracepoint": lambda: bpf.attach_tracepoint(tp="sched:sched_process_exit", fn_name="on_tp"),
        "raw_tracepoint": lambda: bpf.attach_raw_tracepoint(tp="sched_switch", fn_name="on_raw"),
        "kprobe": lambda: bpf.attach_kprobe(event="tcp_connect", fn_name="on_kprobe"),
        "perf_event": lambda: bpf.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=PerfSWConfig.CPU_CLOCK,
            fn_name="on_perf",
            sample_freq=49,
        ),
        "uprobe": lambda: bpf.attach_uprobe(name="c", sym="getaddrinfo", fn_name="on_uprobe"),
    }
    try:
        for name, attach in attempts.items():
            try:
                attach()
                ok[name] = True
            except Exception as exc:
                errors[name] = str(exc).splitlines()[0][:200]
    finally:
        bpf.cleanup()
    try:
        fentry = BPF(text=_FENTRY_TEST_C)
        fentry.cleanup()
        ok["tracing"] = True
    except Exception as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        errors["tracing"] = f"fentry program refused by this kernel ({detail})"
    return ok, errors


def _cache_path(kernel: str) -> Path:
    boot_id = "unknown"
    with contextlib.suppress(OSError):
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return probe_settings().cache_dir / f"capabilities-{kernel}-{boot_id}.json"


def detect_capabilities(*, refresh: bool = False) -> HostCapabilities:
    """Measure (or read the cached measure of) this host's eBPF capabilities."""
    kernel = platform.release()
    cache = _cache_path(kernel)
    if not refresh and cache.exists():
        with contextlib.suppress(OSError, ValueError):
            return HostCapabilities.model_validate_json(cache.read_text())
    count, categories = tracepoint_inventory()
    caps = HostCapabilities(
        hostname=probe_settings().host(),
        kernel=kernel,
        arch=platform.machine(),
        is_root=os.geteuid() == 0,
        tracefs=tracefs_mounted(),
        btf=Path("/sys/kernel/btf/vmlinux").exists(),
        headers=headers_kind(kernel),
        tracepoint_count=count,
        tracepoint_categories=categories,
        measured_at=time.time(),
    )
    caps.bcc_version, caps.bcc_error = _bcc_version()
    if caps.bcc_version and caps.is_root and caps.tracefs:
        caps.program_types, caps.program_type_errors = _test_program_types()
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(caps.model_dump(mode="json")))
    else:
        reason = caps.bcc_error or ("not root" if not caps.is_root else "tracefs not mounted")
        caps.program_types = dict.fromkeys(PROGRAM_TYPES, False)
        caps.program_type_errors = dict.fromkeys(PROGRAM_TYPES, f"not tested: {reason}")
    return caps


def cached_capabilities() -> HostCapabilities | None:
    """The cached measure if one exists for this kernel and boot, without measuring (fast path)."""
    cache = _cache_path(platform.release())
    if not cache.exists():
        return None
    try:
        return HostCapabilities.model_validate_json(cache.read_text())
    except (OSError, ValueError):
        return None
