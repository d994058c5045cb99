"""A process that dies with its parent: PR_SET_PDEATHSIG, the one call every process we start
makes (the probe child, the bot's HTTP server, the demo's workload)."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent thread ends. False when
    prctl is unavailable. A caller that must not outlive a parent that ended before this call
    took effect checks `os.getppid()` afterwards."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
