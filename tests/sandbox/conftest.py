"""Shared pieces of the sandbox tests: they call the sandbox runner directly with argv, so the
policy is bypassed on purpose and only the kernel's layers stand between a command and the host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.sandbox import Limits, PipelineOutcome, Profile, host_status, resolve, run_pipeline


def require_sandbox() -> None:
    status = host_status()
    if status.available:
        return
    reason = f"sandbox unavailable: {status.reason}"
    if os.environ.get("CI", "").lower() == "true" or os.geteuid() == 0:
        pytest.fail(reason)  # root with the helper built is what every test host has
    pytest.skip(reason)


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
    return run_pipeline(resolved, timeout_s=timeout_s, output_cap=output_cap, limits=limits)


def unsandboxed(*stages: list[str], timeout_s: float = 10.0) -> PipelineOutcome:
    """The same pipeline without the sandbox (a baseline to compare output with)."""
    resolved = [resolve(argv) for argv in stages]
    return run_pipeline(resolved, timeout_s=timeout_s, output_cap=1 << 20, sandboxed=False)


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
