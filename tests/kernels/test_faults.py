"""Faults of the kernel matrix (`make test-kernels`): a VM that cannot boot, a run past its
deadline and a package that cannot be fetched each end with a clear message and exit 2 within a
bounded time, and leave no QEMU process, mount or run directory behind.

These run the real driver (scripts/kernels/kernels.py) against the real cached 5.10 base; they
need root, QEMU and a few minutes, so they run only with BPFSLEUTH_KERNELS=1 (make test-kernels).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kernels.support import qemu_processes, runs_with
from tests.support.paths import REPO

DRIVER = REPO / "scripts" / "kernels" / "kernels.py"
CACHE = Path(os.environ.get("BPFSLEUTH_KERNELS_CACHE", "/var/cache/bpfsleuth-kernels"))

pytestmark = runs_with(
    "the kernel matrix's fault tests run with BPFSLEUTH_KERNELS=1 (make test-kernels); "
    "the boot deadline one with BPFSLEUTH_KERNELS_SMOKE=1 too (make test)"
)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache of its own (locks, run directories) sharing the real cache's 5.10 base, so these
    tests neither wait for nor disturb a matrix run; a missing base is built through the link."""
    own = tmp_path / "cache"
    own.mkdir()
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "5.10").mkdir(exist_ok=True)
    (own / "5.10").symlink_to(CACHE / "5.10")
    for shared in [CACHE / "debs", *CACHE.glob("wheelhouse-*")]:
        if shared.is_dir():
            (own / shared.name).symlink_to(shared)
    if (CACHE / "accel.json").is_file():  # the machine's KVM verdict: no probe boot per test
        (own / "accel.json").symlink_to(CACHE / "accel.json")
    return own


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


def _assert_nothing_left(out: str, cache: Path) -> None:
    """No QEMU process of this run, no mount under the cache, no run directory left."""
    found = re.search(r"run directory (\S+)", out)
    assert found, out
    run_dir = found.group(1)
    assert not Path(run_dir).exists(), f"run directory {run_dir} left behind"
    assert not qemu_processes(run_dir), "a QEMU process outlived its run"
    mounts = Path("/proc/mounts").read_text()
    assert str(cache) not in mounts, f"a mount under {cache} was left behind"


@pytest.mark.timeout(1800)
def test_a_vm_whose_init_dies_fails_with_the_console_tail(cache: Path) -> None:
    # /bin/false exists, so the initramfs hands over to it; it exits, the kernel panics
    # ("Attempted to kill init") and panic=-1 with -no-reboot ends QEMU at once
    rc, out, _ = _driver(
        "--kernels",
        "5.10",
        "--append",
        "init=/bin/false",
        "--boot-timeout",
        "240",
        env={"BPFSLEUTH_KERNELS_CACHE": str(cache)},
        limit=1800,
    )
    assert rc == 2, out
    assert "5.10: the VM stopped" in out and "without results" in out, out
    assert "Attempted to kill init" in out, "the console tail should show why the VM stopped"
    _assert_nothing_left(out, cache)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("which", ["boot", "run"])
def test_a_vm_past_its_deadline_is_killed_and_says_so(which: str, cache: Path) -> None:
    # TCG takes 25 s or more to reach the runner: both deadlines expire during the boot
    deadline = 5 + secrets.randbelow(10)
    if which == "boot":
        args = ["--boot-timeout", str(deadline)]
        expected = f"did not boot to its runner within {deadline} s (killed)"
    else:
        args = ["--timeout", str(deadline)]
        expected = f"did not finish within {deadline} s (killed)"
    rc, out, took = _driver(
        "--kernels", "5.10", *args, env={"BPFSLEUTH_KERNELS_CACHE": str(cache)}, limit=1800
    )
    assert rc == 2, out
    assert expected in out, out
    # image preparation comes before the clock starts; the kill is bounded (TERM, then KILL)
    assert took < deadline + 90, took
    _assert_nothing_left(out, cache)


@pytest.mark.timeout(1800)
def test_a_package_that_cannot_be_fetched_fails_the_build_clearly(tmp_path: Path) -> None:
    cache = tmp_path / "fresh-cache"
    cache.mkdir()
    (cache / "debs").mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    package = f"bpfsleuth-no-such-package-{secrets.token_hex(3)}"
    rc, out, _ = _driver(
        "--kernels",
        "5.10",
        env={
            "BPFSLEUTH_KERNELS_CACHE": str(cache),
            "BPFSLEUTH_KERNELS_EXTRA_PACKAGES": package,
            "BPFSLEUTH_KERNELS_BUILD_TIMEOUT": "600",
            "TMPDIR": str(tmp),
        },
        limit=1200,
    )
    assert rc == 2, out
    assert "building the 5.10 base" in out and "mmdebstrap failed" in out, out
    assert package in out, "the message should name the package"
    assert not (cache / "5.10" / "key").exists(), "a failed build must not be marked as cached"
    assert str(cache) not in Path("/proc/mounts").read_text(), "mmdebstrap left a mount behind"
    assert not qemu_processes(str(cache))
    assert not list(tmp.iterdir()), f"the build left {list(tmp.iterdir())} behind"
