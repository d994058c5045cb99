"""What a stage reads, reaches and emits, beyond its own options (docs/architecture.md §5).

- devices: only metadata tools may name block devices; nothing reads another device (endless,
  a terminal, an input device, a watchdog that arms a reboot when opened), `/proc/kmsg` or a
  tracing `trace_pipe` (reading consumes them);
- transformers: a stage that encodes, compresses or rewrites characters never follows a stage
  that read a file or /proc, nor reads a file itself (its output would pass redaction unseen);
- network: destinations must be on `BPFSLEUTH_ALLOWED_DESTINATIONS` (worker/policy/network.py),
  and the `-H`/`-M` forms of the systemd tools (ssh, containers) need approval.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re

from worker.policy.invocation import Finding, Invocation, approval
from worker.policy.network import (
    NETWORK_PROGRAMS,
    destinations_of,
    parse_destinations,
    remote_option_reason,
)
from worker.policy.programs import PROGRAMS
from worker.policy.scripts import sed_transliterates

_WHITESPACE_SET = re.compile(r"(?:\\[0ntr\\]|\\0{1,3}|[ ,:;|=\t]|\[:(?:space|blank):\])+")


def _transforms(name: str, inv: Invocation) -> bool:
    """Does this stage encode, compress or rewrite characters (so redaction cannot see)?"""
    if name == "tr":
        return not all(_WHITESPACE_SET.fullmatch(operand) for operand in inv.positionals)
    if name in {"gzip", "xz", "bzip2", "zstd"}:
        return not inv.has("-d", "--decompress")
    if name == "sed":
        scripts = inv.values("-e", "--expression") or inv.positionals[:1]
        return any(sed_transliterates(script) for script in scripts)
    rule = PROGRAMS.get(name)
    return rule is not None and rule.transforms and name not in {"gunzip", "unxz"}


# Only stat and list what they are given; they never open a device.
STAT_ONLY = frozenset({"ls", "stat", "readlink", "realpath", "du", "find"})
_BLOCK_DEVICE = re.compile(
    r"/dev/(?:sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+(?:n[0-9]+)?|mmcblk[0-9]+|dm-[0-9]+|"
    r"md[0-9]*|loop[0-9]+|sr[0-9]+|nbd[0-9]+|zd[0-9]+|mapper/|disk/by-|md/)[A-Za-z0-9_.:/-]*"
)


def device_reason(path: str, *, metadata_only: bool = False) -> str | None:
    """Why a program that reads content may not read `path` unattended: a device or /proc/kmsg.

    Metadata tools (lsblk, smartctl) may name block devices; nothing else reads a device:
    devices are endless (`/dev/zero`), raw disks, terminals and input devices, or arm a reboot
    when opened (`/dev/watchdog`); `/proc/kmsg` consumes the kernel log. Symlinks are followed.
    """
    if "/" not in path:
        return None
    normal = posixpath.normpath(posixpath.join("/", path))
    normal = "/" + normal.lstrip("/")
    candidates = [normal]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(os.path.realpath(normal))
    for candidate in candidates:
        if candidate == "/dev/null" or (metadata_only and _BLOCK_DEVICE.fullmatch(candidate)):
            continue
        if candidate == "/dev" or candidate.startswith("/dev/"):
            return (
                f"{path} is a device: endless, a disk, a terminal or a watchdog (read only "
                "through a metadata tool such as lsblk or smartctl)"
            )
        if candidate == "/proc/kmsg":
            return f"{path}: reading /proc/kmsg consumes the kernel log (use dmesg)"
        if candidate.endswith("/trace_pipe") and "/tracing/" in candidate:
            return f"{path}: reading trace_pipe consumes the trace and blocks"
    return None


def _looks_like_address(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", text))


def _network_finding(name: str, inv: Invocation, destinations: str) -> Finding | None:
    targets = destinations_of(inv)
    if isinstance(targets, str):
        return approval(targets)
    allowed = parse_destinations(destinations)
    for target in targets:
        if not allowed.allows(target):
            how = "" if _looks_like_address(target) else " (its name goes to DNS resolvers)"
            return approval(
                f"{name} reaches {target!r}{how}, which is not on BPFSLEUTH_ALLOWED_DESTINATIONS"
            )
    return None


def stage_effects(
    name: str, args: list[str], inv: Invocation, *, index: int, destinations: str
) -> list[Finding]:
    """Findings about where this stage reaches and what its output becomes."""
    findings: list[Finding] = []
    remote = remote_option_reason(name, args)
    if remote is not None:
        findings.append(approval(remote))
    if name in NETWORK_PROGRAMS:
        reach = _network_finding(name, inv, destinations)
        if reach is not None:
            findings.append(reach)
    if _transforms(name, inv) and (index > 0 or (name != "tr" and inv.positionals)):
        findings.append(
            approval(
                f"`{name}` transforms what an earlier stage or a file gave it (encodes, "
                "compresses or rewrites characters), which defeats redaction"
            )
        )
    return findings
