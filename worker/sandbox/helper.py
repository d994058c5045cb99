"""The exec helper (`bpfsleuth-sandbox`, built from helper.c by scripts/setup.sh): where it is,
how it is called, and what it says it applied.

The helper is a small C program, so nothing runs between fork and exec in a copy of a threaded
Python process (Celery's pool has threads; `preexec_fn` is unsafe there). It writes one line on
a report fd before execve: `ok <layers>`, optionally `note <text>`; or `refused <why>` (exit
121) when a required layer (seccomp, no_new_privs, capabilities, rlimits) cannot be set; or
`exec <errno> <text>` (exit 127) when execve failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from worker.sandbox.profiles import Profile
from worker.settings import SandboxSettings

HELPER_NAME = "bpfsleuth-sandbox"
HELPER_ENV = "BPFSLEUTH_SANDBOX_HELPER"
EXIT_REFUSED = 121
EXIT_EXEC = 127
SOURCE = Path(__file__).with_name("helper.c")


class Limits(BaseModel):
    """rlimits for one sandboxed program (RLIMIT_FSIZE and RLIMIT_CORE are always 0)."""

    address_space_bytes: int = 4 << 30
    cpu_s: int = 61
    open_files: int = 1024
    processes: int = 64


class SandboxStatus(BaseModel):
    """What the helper applies on this host, measured by running it (`--check`)."""

    available: bool
    layers: str = ""
    """e.g. `seccomp+landlock(abi 7)+caps(dac_read_search)+rlimits+nnp`."""
    helper: str = ""
    reason: str = ""
    """Why it is unavailable, or what it lacks (a missing Landlock)."""


def helper_candidates() -> list[Path]:
    configured = SandboxSettings().helper
    if configured:
        return [Path(configured)]
    return [
        Path(sys.prefix) / "libexec" / HELPER_NAME,
        Path("/usr/local/libexec") / HELPER_NAME,
        Path("/usr/libexec") / HELPER_NAME,
    ]


def find_helper() -> Path | None:
    for candidate in helper_candidates():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def helper_argv(
    helper: Path,
    profile: Profile,
    limits: Limits,
    *,
    report_fd: int,
    path: str,
    argv: list[str],
    check: bool = False,
) -> list[str]:
    args = [str(helper), "--report-fd", str(report_fd), "--parent", str(os.getpid())]
    args += ["--caps", ",".join(sorted(profile.caps))] if profile.caps else []
    args += ["--ip"] if profile.ip_sockets else []
    args += ["--tcp"] if profile.ip_sockets and profile.tcp else []
    args += ["--unix"] if profile.unix_sockets else []
    args += ["--fork"] if profile.fork else []
    args += ["--dev-ioctl"] if profile.device_ioctls else []
    args += [] if profile.landlock else ["--no-landlock"]
    args += ["--rdwr"] if profile.open_read_write else []
    args += ["--as", str(limits.address_space_bytes), "--cpu", str(limits.cpu_s)]
    args += ["--nofile", str(limits.open_files), "--nproc", str(limits.processes)]
    if check:
        return [*args, "--check"]
    return [*args, "--", path, *argv]


class Report(BaseModel):
    """The helper's lines for one stage, parsed."""

    layers: str = ""
    notes: list[str] = []
    refused: str = ""
    exec_error: str = ""

    @classmethod
    def parse(cls, text: str) -> Report:
        report = cls()
        for line in text.splitlines():
            word, _, rest = line.partition(" ")
            if word == "ok":
                report.layers = rest
            elif word == "note":
                report.notes.append(rest.strip(" ()"))
            elif word == "refused":
                report.refused = rest
            elif word == "exec":
                report.exec_error = rest.partition(" ")[2] or rest
        return report


def check(profile: Profile | None = None) -> SandboxStatus:
    """Run the helper in check mode: it applies every layer to itself and exits."""
    helper = find_helper()
    if helper is None:
        where = ", ".join(str(c) for c in helper_candidates())
        return SandboxStatus(
            available=False,
            reason=f"sandbox helper {HELPER_NAME} not found ({where}); run `make setup`",
        )
    read_fd, write_fd = os.pipe()
    try:
        completed = subprocess.run(
            helper_argv(
                helper,
                profile or Profile(),
                Limits(),
                report_fd=write_fd,
                path="",
                argv=[],
                check=True,
            ),
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            start_new_session=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        os.close(read_fd)
        return SandboxStatus(available=False, helper=str(helper), reason=f"helper failed: {exc}")
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        report = Report.parse(stream.read().decode(errors="replace"))
    if completed.returncode != 0 or not report.layers:
        why = report.refused or completed.stderr.decode(errors="replace").strip()
        return SandboxStatus(
            available=False,
            helper=str(helper),
            reason=f"the sandbox cannot be set up here: {why or f'exit {completed.returncode}'}",
        )
    return SandboxStatus(
        available=True, layers=report.layers, helper=str(helper), reason="; ".join(report.notes)
    )


@lru_cache(maxsize=1)
def host_status() -> SandboxStatus:
    """`check()` once per process: the host's sandbox does not change while it runs."""
    return check()
