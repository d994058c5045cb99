"""What the kernel tests share: the switch that runs them, and the QEMU processes still alive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def runs_with(reason: str, *, smoke: bool = True) -> pytest.MarkDecorator:
    """Skip unless BPFSLEUTH_KERNELS=1 (make test-kernels) or, when `smoke`,
    BPFSLEUTH_KERNELS_SMOKE=1 (make test's smoke run)."""
    enabled = os.environ.get("BPFSLEUTH_KERNELS") == "1" or (
        smoke and os.environ.get("BPFSLEUTH_KERNELS_SMOKE") == "1"
    )
    return pytest.mark.skipif(not enabled, reason=reason)


def qemu_processes(marker: str) -> list[str]:
    """The command lines of running QEMU processes that mention `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in text and marker in text:
            found.append(text)
    return found
