"""Whether this host can run the probes.

tests/conftest.py calls `require_ebpf()` before every test marked `@pytest.mark.ebpf` (and
before its fixtures): outside CI a host that cannot run probes skips the test with the reason;
with CI=true the same is a failure, because CI must run every eBPF test.
"""

from __future__ import annotations

import functools
import os

import pytest

from probes.capabilities import detect_capabilities


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
