"""The live processes of this host, read from /proc."""

from __future__ import annotations

from pathlib import Path


def processes_with(token: str) -> list[int]:
    """Pids whose command line contains `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found
