"""Whether this host can run the probes, and how much slower it runs the live tests.

`time_scale()`, `scaled(seconds)`: how much slower this machine runs the live tests' workloads
than the hosts they were tuned on (BPFSLEUTH_TEST_TIME_SCALE, default 1; the kernel matrix's TCG
guests set it, docs/kernels.md). Probe windows, workload lifetimes and waits are multiplied by it;
assertions on numbers are not.

tests/conftest.py calls `require_ebpf()` before every test marked `@pytest.mark.ebpf` (and
before its fixtures): outside CI a host that cannot run probes skips the test with the reason;
with CI=true the same is a failure, because CI must run every eBPF test.
"""

from __future__ import annotations

import functools
import os

import pytest

from probes.capabilities import detect_capabilities


def time_scale() -> float:
    raw = os.environ.get("BPFSLEUTH_TEST_TIME_SCALE", "").strip()
    value = float(raw) if raw else 1.0
    if not 1.0 <= value <= 100.0:
        raise ValueError(f"BPFSLEUTH_TEST_TIME_SCALE must be within 1-100, got {raw!r}")
    return value


def scaled(seconds: float) -> float:
    """`seconds` stretched by this machine's time scale."""
    return seconds * time_scale()


@functools.cache
def ebpf_problems() -> tuple[str, ...]:
    """Why probes cannot run here (measured once a session); empty when they can."""
    caps = detect_capabilities()
    problems = []
    if not caps.is_root:
        problems.append("not root")
    if not caps.tracefs:
        problems.append("tracefs not mounted at /sys/kernel/tracing")
    if caps.bcc_version is None:
        problems.append(f"bcc not importable ({caps.bcc_error})")
    elif not caps.supports("tracepoint"):
        problems.append("tracepoint programs do not attach")
    return tuple(problems)


def require_ebpf() -> None:
    problems = ebpf_problems()
    if not problems:
        return
    reason = "eBPF unavailable: " + "; ".join(problems)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
