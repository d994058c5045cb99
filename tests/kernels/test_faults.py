"""Faults of the kernel matrix (`make test-kernels`): a VM that cannot boot, a run past its
deadline and a package that cannot be fetched each end with a clear message and exit 2 within a
bounded time, and leave no QEMU process, mount or run directory behind.

These run the real driver (scripts/kernels/kernels.py) against the real cached 5.10 base; they
need root, QEMU and a few minutes, so they run only with BPFSLEUTH_KERNELS=1 (make test-kernels).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "scripts" / "kernels" / "kernels.py"
CACHE = Path(os.environ.get("BPFSLEUTH_KERNELS_CACHE", "/var/cache/bpfsleuth-kernels"))

pytestmark = pytest.mark.skipif(
    os.environ.get("BPFSLEUTH_KERNELS") != "1",
    reason="the kernel matrix's fault tests run with BPFSLEUTH_KERNELS=1 (make test-kernels)",
)


def _driver(*args: str, env: dict[str, str] | None = None, limit: float) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "run", "--results", "", *args],
        capture_output=True,
        text=True,
        timeout=limit,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def _qemu_processes(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in text and marker in text:
            found.append(text)
    return found


def _assert_nothing_left(cache: Path) -> None:
    assert not _qemu_processes(str(cache)), "a QEMU process outlived its run"
    mounts = Path("/proc/mounts").read_text()
    assert str(cache) not in mounts, f"a mount under {cache} was left behind"
    runs = cache / "runs"
    left = list(runs.iterdir()) if runs.exists() else []
    assert not left, f"run directories left: {left}"


def test_a_kernel_that_cannot_find_its_init_fails_with_the_console_tail() -> None:
    missing = f"/sbin/no-init-{secrets.token_hex(4)}"
    rc, out, _ = _driver(
        "--kernels",
        "5.10",
        "--append",
        f"init={missing}",
        "--boot-timeout",
        "240",
        limit=900,
    )
    assert rc == 2, out
    assert "5.10:" in out and ("without results" in out or "did not boot" in out), out
    assert missing in out, "the console tail should show why the VM did not boot"
    _assert_nothing_left(CACHE)


def test_a_run_past_its_deadline_is_killed_and_says_so() -> None:
    deadline = 15 + secrets.randbelow(10)
    rc, out, took = _driver("--kernels", "5.10", "--timeout", str(deadline), limit=900)
    assert rc == 2, out
    assert f"did not finish within {deadline} s (killed)" in out, out
    # image preparation happens before the clock starts; the kill itself is bounded (TERM, KILL)
    assert took < deadline + 120, took
    _assert_nothing_left(CACHE)


def test_a_package_that_cannot_be_fetched_fails_the_build_clearly(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debs").mkdir()
    package = f"bpfsleuth-no-such-package-{secrets.token_hex(3)}"
    rc, out, _ = _driver(
        "--kernels",
        "5.10",
        env={
            "BPFSLEUTH_KERNELS_CACHE": str(cache),
            "BPFSLEUTH_KERNELS_EXTRA_PACKAGES": package,
            "BPFSLEUTH_KERNELS_BUILD_TIMEOUT": "600",
        },
        limit=1200,
    )
    assert rc == 2, out
    assert "building the 5.10 base" in out and "mmdebstrap failed" in out, out
    assert package in out, "the message should name the package"
    assert not (cache / "5.10" / "key").exists(), "a failed build must not be marked as cached"
    _assert_nothing_left(cache)
