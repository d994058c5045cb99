"""The kernel matrix's bookkeeping on the host (scripts/kernels/kernels.py), without a VM: what
the sandbox step's findings become, how a narrowed run folds into the results without passing
earlier parts off as fresh, `merge`, and the tables. Fast (well under a second), run by `make test`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DRIVER = Path(__file__).resolve().parents[2] / "scripts" / "kernels" / "kernels.py"


@pytest.fixture(scope="module")
def km() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kernels_driver", DRIVER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kernels_driver"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _cache(km: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(km, "CACHE", tmp_path / "cache")
    monkeypatch.delenv("BPFSLEUTH_KERNELS_PROBE_TESTS", raising=False)


def _row(file: str, name: str, outcome: str, message: str = "") -> dict[str, Any]:
    return {"file": file, "name": name, "outcome": outcome, "message": message, "seconds": 0.1}


def test_landlock_summary_names_the_abi_and_what_it_lacks(km: ModuleType) -> None:
    abi = random.randint(1, 6)
    text = km.landlock_summary({"abi": abi, "errno": None})
    assert text.startswith(f"ABI {abi}; without ")
    for n, (linux, what) in km.LANDLOCK_ABI_ADDS.items():
        assert (f"{what} (ABI {n}, Linux {linux})" in text) == (n > abi), (n, text)
    newest = max(km.LANDLOCK_ABI_ADDS)
    assert km.landlock_summary({"abi": newest}) == f"ABI {newest}"


def test_landlock_summary_says_why_there_is_none(km: ModuleType) -> None:
    lsm = ",".join(random.sample(["lockdown", "capability", "yama", "apparmor", "bpf"], 3))
    absent = km.landlock_summary({"abi": 0, "errno": "ENOSYS", "config": "not set", "lsm": lsm})
    assert "absent" in absent and "5.13" in absent and "ENOSYS" in absent
    for name in ("EOPNOTSUPP", "ENOTSUP"):
        off = km.landlock_summary({"abi": 0, "errno": name, "config": "y", "lsm": lsm})
        assert "not enabled at boot" in off and lsm in off, off
    odd = km.landlock_summary({"abi": 0, "errno": "EPERM", "config": "y"})
    assert odd.startswith("absent (EPERM")


def test_sandbox_summary_counts_failures_and_groups_skips_by_reason(km: ModuleType) -> None:
    assert km.sandbox_summary({}) == {}
    reason = f"needs Landlock ABI >= 4; this kernel has ABI {random.randint(1, 3)}"
    n_skip, n_pass = random.randint(2, 9), random.randint(1, 30)
    rows = [_row("test_files", f"t{i}", "passed") for i in range(n_pass)]
    rows += [_row("test_network", f"s{i}", "skipped", reason) for i in range(n_skip)]
    rows += [_row("test_devices", "odd", "skipped", "dmesg is not installed")]
    rows += [_row("test_lifetime", "cpu", "failed", "AssertionError: " + "x" * 900)]
    res = {
        "sandbox_step": {
            "landlock": {"abi": 2, "errno": None},
            "helper": {
                "default": {"available": True, "layers": "seccomp+landlock(abi 2)+caps(x)"},
                "doctor": {"status": "ok", "detail": "seccomp+landlock(abi 2)+caps(x)"},
                "process_reader": {"available": True, "layers": "seccomp+caps(y)"},
            },
        },
        "sandbox_tests": rows,
    }
    box = km.sandbox_summary(res)
    assert box["tests"] == {"passed": n_pass, "failed": 1, "error": 0, "skipped": n_skip + 1}
    assert box["landlock_summary"].startswith("ABI 2; without truncate")
    assert box["layers"] == "seccomp+landlock(abi 2)+caps(x)"
    assert box["profiles"] == {
        "default": "seccomp+landlock(abi 2)+caps(x)",
        "process_reader": "seccomp+caps(y)",
    }
    assert box["doctor"]["status"] == "ok"
    assert [s["reason"] for s in box["skipped"]] == [reason, "dmesg is not installed"]
    assert box["skipped"][0]["count"] == n_skip and len(box["skipped"][0]["tests"]) <= 6
    assert box["failed"] == [
        {
            "file": "test_lifetime",
            "name": "cpu",
            "outcome": "failed",
            "message": ("AssertionError: " + "x" * 900)[:400],
        }
    ]


def test_a_stopped_sandbox_step_is_read_from_its_streamed_log(
    km: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"steps": {"sandbox": {"rc": None}}}))
    (out / "sandbox.log").write_text(
        "tests/sandbox/test_files.py::test_form_changes_nothing[rm] PASSED [ 1%]\n"
        "tests/sandbox/test_network.py::test_landlock_denies SKIPPED (no) [ 2%]\n"
    )
    rows = km.results_of(out)["sandbox_tests"]
    assert [(r["file"], r["outcome"]) for r in rows] == [
        ("test_files", "passed"),
        ("test_network", "skipped"),
    ]


def _entry(km: ModuleType, steps: list[str], **parts: Any) -> dict[str, Any]:
    res = {"steps": {s: {"rc": 0, "seconds": 1.0} for s in steps}, **parts}
    return dict(km.summarise("6.1", res, {"load_before": "1", "load_after": "2"}, "tcg"))


def test_a_narrowed_run_keeps_earlier_parts_and_says_they_are_carried_over(
    km: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes = random.sample(["exec", "irq", "dns", "file_io", "memory_growth"], 3)
    data: dict[str, Any] = {}
    full = _entry(
        km,
        ["doctor", "probe_smoke", "resolver", "scenarios", "probe_tests"],
        resolver=[{"kind": "kprobe", "target": "tcp_connect", "ok": True}],
        scenarios=[_row("test_scen", "s1", "passed")],
        probe_tests=[_row(f"test_{p}", "t", "passed") for p in probes],
    )
    full["measured"] = "2026-12-06T11:00:00+00:00"
    cells = {p: {"status": "pass", "reason": "", "compile_s": 5.0} for p in probes}
    km.fold_into(data, "6.1", full, cells)
    assert data["kernels"]["6.1"]["carried_over"] == {}

    narrow = _entry(
        km,
        ["doctor", "sandbox"],
        sandbox_step={"landlock": {"abi": 2}},
        sandbox_tests=[_row("test_files", "a", "passed")],
    )
    narrow["measured"] = "2026-12-06T12:00:00+00:00"
    not_run = {"status": "not run", "reason": "neither compiled nor tested in this run"}
    km.fold_into(data, "6.1", narrow, {p: dict(not_run) for p in probes})
    entry = data["kernels"]["6.1"]
    assert entry["resolver"] == full["resolver"] and entry["scenarios"] == full["scenarios"]
    assert entry["carried_over"]["resolver"] == "2026-12-06T11:00:00+00:00"
    assert entry["carried_over"]["probe_tests"] == "2026-12-06T11:00:00+00:00"
    assert "sandbox" not in entry["carried_over"] and entry["sandbox"]["tests"]["passed"] == 1
    assert [r["steps"] for r in entry["runs"]] == [sorted(full["steps"]), ["doctor", "sandbox"]]
    for p in probes:  # the full run's cells stand, with their own time
        assert data["matrix"][p]["6.1"]["status"] == "pass"
        assert data["matrix"][p]["6.1"]["measured"] == "2026-12-06T11:00:00+00:00"

    # one probe's tests re-run later: that cell says so, the others are the full run's
    again = probes[0]
    monkeypatch.setenv("BPFSLEUTH_KERNELS_PROBE_TESTS", f"tests/probes/test_{again}.py")
    rerun = _entry(km, ["probe_tests"], probe_tests=[_row(f"test_{again}", "t", "passed")])
    rerun["measured"] = "2026-12-06T12:30:00+00:00"
    cells = {p: dict(not_run) for p in probes}
    cells[again] = {"status": "pass", "reason": "", "compile_s": None}
    km.fold_into(data, "6.1", rerun, cells)
    ref = km.reference_run(data["kernels"]["6.1"])
    assert ref == "2026-12-06T11:00:00+00:00"  # the re-run's scope is one file, not the matrix
    assert km.matrix_text(data["matrix"][again]["6.1"], ref) == "pass (5.0 s) [re-run 12:30 UTC]"
    other = probes[1]
    assert km.matrix_text(data["matrix"][other]["6.1"], ref) == "pass (5.0 s)"
    older = dict(data["matrix"][other]["6.1"], measured="2026-12-06T08:48:00+00:00")
    assert km.matrix_text(older, ref).endswith("[carried over: measured 2026-12-06 08:48 UTC]")
    assert km.matrix_text({"status": "pass", "reason": ""}, ref).endswith(
        "[earlier run, time not kept]"
    )


def test_merge_keeps_the_source_times_and_the_tables_show_them(
    km: ModuleType, tmp_path: Path
) -> None:
    source, dest = tmp_path / "run.json", tmp_path / "all.json"
    entry = _entry(
        km,
        ["doctor", "sandbox"],
        sandbox_step={"landlock": {"abi": 0, "errno": "ENOSYS", "config": "not set"}},
        sandbox_tests=[_row("test_files", "a", "passed"), _row("test_network", "b", "skipped")],
    )
    entry["kernel"] = {"release": "6.1.0-57-amd64"}
    stamp = f"2026-12-06T1{random.randint(0, 9)}:{random.randint(10, 59)}:00+00:00"
    entry["measured"] = stamp
    cell = {"status": "pass", "reason": "", "compile_s": 4.2, "measured": stamp}
    km.fold(source, "6.1", entry, {"exec": cell})
    assert km.merge(source, dest) == ["6.1"]
    merged = json.loads(dest.read_text())
    assert merged["kernels"]["6.1"]["measured"] == stamp
    assert merged["matrix"]["exec"]["6.1"]["measured"] == stamp
    text = km.table(dest)
    assert "no full run recorded" in text  # no run with the live probe tests: cells say so
    assert f"| exec | pass (4.2 s) [re-run {stamp[11:16]} UTC] |" in text
    assert "absent: the kernel has no landlock_create_ruleset" in text
    assert "1 passed, 0 failed, 1 skipped" in text
    assert f"| 6.1 | {stamp[:10]} {stamp[11:16]} | doctor,sandbox |" in text


def test_a_guest_that_writes_nothing_is_seen_idle_and_its_lockups_counted(
    km: ModuleType, tmp_path: Path
) -> None:
    disks = [tmp_path / "root.qcow2", tmp_path / "work.ext4"]
    for disk in disks:
        disk.write_bytes(b"")
    now = 1_800_000_000.0
    quiet, recent = random.uniform(1000, 5000), random.uniform(1, 100)
    os.utime(disks[0], (now - quiet, now - quiet))
    os.utime(disks[1], (now - quiet - 50, now - quiet - 50))
    assert km.idle_for(disks, now) == pytest.approx(quiet)
    os.utime(disks[1], (now - recent, now - recent))  # one disk written lately: not idle
    assert km.idle_for(disks, now) == pytest.approx(recent)
    assert km.idle_for([tmp_path / "missing"], now) == 0.0
    stalls = random.randint(1, 20)
    (tmp_path / "console.log").write_text(
        "[ 200.5] rcu: INFO: rcu_preempt self-detected stall on CPU\n"
        + "[ 204.7] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [swapper/0:0]\n" * stalls
    )
    assert km.lockups(tmp_path) == stalls + 1
    assert km.lockups(tmp_path / "nowhere") == 0


def test_a_probe_whose_live_test_was_skipped_or_xfailed_does_not_read_as_a_plain_pass(
    km: ModuleType,
) -> None:
    why = f"XFAIL probe bug {random.randint(1, 99)}"
    res = {
        "steps": {"probe_tests": {"rc": 1}},
        "probe_tests": [
            _row("test_memory_growth", "test_spec_and_example", "passed"),
            _row("test_memory_growth", "test_burst", "skipped", why),
        ],
    }
    cell = km.probe_cell("memory_growth", res)
    assert cell["status"] == "pass" and cell["skipped_reason"] == why
    cell["measured"] = "2026-12-06T11:00:00+00:00"
    text = km.matrix_text(cell, "2026-12-06T11:00:00+00:00")
    assert text == f"pass; 1 of 2 tests skipped ({why})"


def test_without_a_full_run_a_cell_of_the_latest_run_is_a_re_run_and_older_ones_carried(
    km: ModuleType,
) -> None:
    latest, older = "2026-12-06T12:20:00+00:00", "2026-12-06T09:11:00+00:00"
    fresh = {"status": "pass", "reason": "", "measured": latest}
    assert km.matrix_text(fresh, None, latest) == "pass [re-run 12:20 UTC]"
    stale = {"status": "pass", "reason": "", "measured": older}
    carried = "pass [carried over: measured 2026-12-06 09:11 UTC]"
    assert km.matrix_text(stale, None, latest) == carried


@pytest.mark.parametrize("content", [None, "{", "[1, 2"])
def test_table_of_a_missing_or_broken_results_file_says_so_and_exits_2(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / f"results-{secrets.token_hex(3)}.json"
    if content is not None:
        path.write_text(content)
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "table", "--results", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"cannot read the results {path}" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
