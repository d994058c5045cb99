"""KVM when it works here, TCG otherwise (scripts/kernels/accel.py), on the real QEMU and /dev/kvm.

The probe boots a real stock kernel under KVM with a deadline. On a machine where nested KVM
hangs (this repo's development host, DESIGN.md §4a) the verdict is TCG within the deadline, with
the reason; where KVM works, KVM. Either way no QEMU of the probe outlives it, the verdict is
cached per machine, and a cache written for another machine is not believed. Runs with the smoke
run (root, BPFSLEUTH_KERNELS_SMOKE=1 or BPFSLEUTH_KERNELS=1), after it has built the 5.10 base.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "kernels"))
import accel  # noqa: E402  (a script's sibling module, not a package)

from tests.kernels.support import qemu_processes, runs_with  # noqa: E402

CACHE = Path(os.environ.get("BPFSLEUTH_KERNELS_CACHE", "/var/cache/bpfsleuth-kernels"))

pytestmark = [
    runs_with("runs with the kernel smoke run: BPFSLEUTH_KERNELS_SMOKE=1 (make test)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="QEMU with /dev/kvm needs root here"),
]


def _vmlinuz() -> Path:
    for kernel in ("5.10", "6.1", "6.12"):
        path = CACHE / kernel / "vmlinuz"
        if path.is_file():
            return path
    pytest.fail(f"no cached kernel under {CACHE}: the smoke run before this test builds one")


def test_auto_decides_within_its_deadline_caches_and_leaves_nothing(tmp_path: Path) -> None:
    deadline = random.uniform(6.0, 12.0)
    started = time.monotonic()
    verdict = accel.choose("auto", _vmlinuz(), tmp_path, deadline_s=deadline)
    took = time.monotonic() - started
    assert verdict.accel in ("kvm", "tcg") and verdict.why
    assert took < deadline + 10, f"the probe took {took:.1f} s for a {deadline:.1f} s deadline"
    if verdict.accel == "tcg" and "hung" in verdict.why:
        assert took >= deadline - 0.5  # it waited its whole deadline before calling it a hang
    assert not qemu_processes("bpfsleuth-kvm-probe-"), "a probe QEMU outlived the probe"
    record = json.loads((tmp_path / "accel.json").read_text())
    assert record["key"] == accel.machine_key() and record["accel"] == verdict.accel
    started = time.monotonic()
    again = accel.choose("auto", _vmlinuz(), tmp_path, deadline_s=deadline)
    assert again.accel == verdict.accel and "(cached" in again.why
    assert time.monotonic() - started < 3


def test_a_verdict_cached_for_another_machine_is_probed_again(tmp_path: Path) -> None:
    truth = accel.choose("auto", _vmlinuz(), tmp_path / "fresh", deadline_s=8.0).accel
    wrong = "tcg" if truth == "kvm" else "kvm"
    stale = {"key": "QEMU 0.1 | 2.6.32 | some other cpu", "accel": wrong, "why": "x", "at": "then"}
    (tmp_path / "accel.json").write_text(json.dumps(stale))
    verdict = accel.choose("auto", _vmlinuz(), tmp_path, deadline_s=8.0)
    assert verdict.accel == truth and "(cached" not in verdict.why
    assert json.loads((tmp_path / "accel.json").read_text())["key"] == accel.machine_key()


@pytest.mark.parametrize("asked", ["tcg", "kvm"])
def test_an_explicit_choice_is_taken_as_asked_without_a_probe(tmp_path: Path, asked: str) -> None:
    verdict = accel.choose(asked, tmp_path / "no-such-vmlinuz", tmp_path)
    assert verdict == accel.Verdict(asked, "asked for")
    assert not (tmp_path / "accel.json").exists()
