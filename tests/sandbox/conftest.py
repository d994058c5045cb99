"""Shared pieces of the sandbox tests: they call the sandbox runner directly with argv, so the
policy is bypassed on purpose and only the kernel's layers stand between a command and the host.

Timeouts and wall-clock bounds are stretched by BPFSLEUTH_TEST_TIME_SCALE (`scaled`: 1 on a
real host, 5 in the kernel matrix's emulated VMs); what a command may do is not. On a kernel
without Landlock, or with a lower ABI than an assertion needs, `require_landlock` skips only that
assertion, naming the kernel's lack, after everything that must hold without it was asserted.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ebpf import scaled
from worker.sandbox import Limits, PipelineOutcome, Profile, host_status, resolve, run_pipeline

# The Linux release that brought each Landlock ABI the tests need.
LANDLOCK_SINCE = {1: "5.13", 2: "5.19", 3: "6.2", 4: "6.7", 5: "6.10", 6: "6.12", 7: "6.15"}


def require_sandbox() -> None:
    status = host_status()
    if status.available:
        return
    reason = f"sandbox unavailable: {status.reason}"
    if os.environ.get("CI", "").lower() == "true" or os.geteuid() == 0:
        pytest.fail(reason)  # root with the helper built is what every test host has
    pytest.skip(reason)


def landlock_abi() -> int:
    """The kernel's Landlock ABI, asked directly (landlock_create_ruleset with VERSION); 0: none."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def require_landlock(min_abi: int, what: str) -> None:
    """Skip the rest of a test when this kernel's Landlock cannot do `what` (its ABI is below
    `min_abi`, or there is no Landlock): the skip names the kernel and what it lacks."""
    abi = landlock_abi()
    if abi >= min_abi:
        return
    have = f"Landlock ABI {abi}" if abi else f"no Landlock ({host_status().reason or 'absent'})"
    pytest.skip(
        f"{what} needs Landlock ABI >= {min_abi} (Linux {LANDLOCK_SINCE[min_abi]}); "
        f"this kernel ({platform.release()}) has {have}"
    )


def sandboxed(
    *stages: list[str],
    timeout_s: float = 10.0,
    output_cap: int = 1 << 20,
    profile: Profile | None = None,
    limits: Limits | None = None,
) -> PipelineOutcome:
    """Run `stages` (a pipeline) in the sandbox; `profile` overrides every stage's profile."""
    require_sandbox()
    resolved = [resolve(argv, profile) for argv in stages]
    return run_pipeline(resolved, timeout_s=scaled(timeout_s), output_cap=output_cap, limits=limits)


def unsandboxed(*stages: list[str], timeout_s: float = 10.0) -> PipelineOutcome:
    """The same pipeline without the sandbox (a baseline to compare output with)."""
    resolved = [resolve(argv) for argv in stages]
    return run_pipeline(resolved, timeout_s=scaled(timeout_s), output_cap=1 << 20, sandboxed=False)


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """Every path under `root` with mode, uid, size, mtime_ns and (for files) content."""
    state: dict[str, tuple[int, int, int, int, bytes]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        state[str(path)] = (info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns, content)
    return state


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """A directory with a random name holding one file with random content."""
    directory = tmp_path / f"t{os.urandom(4).hex()}"
    directory.mkdir()
    (directory / f"f{os.urandom(4).hex()}.log").write_bytes(os.urandom(8).hex().encode() + b"\n")
    yield directory
