"""Shared test helpers.

`require_ebpf()`: call it first in an `@pytest.mark.ebpf` test. Outside CI a host that cannot run
probes skips the test with the reason; with CI=true the same is a failure, because CI must run
every eBPF test.
"""

from __future__ import annotations

import os

import pytest


def require_ebpf() -> None:
    from probes.capabilities import detect_capabilities

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
    if not problems:
        return
    reason = "eBPF unavailable: " + "; ".join(problems)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
