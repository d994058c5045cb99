"""CI's kernel smoke run (part of `make test`, docs/kernels.md): the oldest kernel of the matrix,
5.10, booted under QEMU from a stock Debian image, and inside it, as root, the doctor, every catalog
probe compiled and attached, the resolver on every seed request form and one incident scenario end
to end with the offline planner. Then no QEMU process, mount or run directory of it is left.

It runs the real driver (scripts/kernels/kernels.py) and reads what the VM wrote. A missing image
cache is built (minutes, never a failure). It needs root (mmdebstrap, QEMU; the driver installs
the host packages with apt-get when they are missing), so it runs only as root and with
BPFSLEUTH_KERNELS_SMOKE=1 or BPFSLEUTH_KERNELS=1 (`make test` sets the first).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernels.support import qemu_processes, runs_with

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "scripts" / "kernels" / "kernels.py"
CATALOG = REPO / "probes" / "catalog"
# The whole smoke run, cold (the image built from Debian's mirrors) included; warm: 6-10 min.
LIMIT_S = 2400
VM_LIMIT_S = 1200  # boot to power-off; 6-9 min at load 2-10

pytestmark = [
    runs_with("the kernel smoke run runs with BPFSLEUTH_KERNELS_SMOKE=1 (make test)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the kernel smoke run needs root"),
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any], float]:
    results = tmp_path_factory.mktemp("smoke") / "kernels-smoke.json"
    env = {
        **os.environ,
        "BPFSLEUTH_KERNELS_PROBE_TESTS": "none",
        # light: no live probe tests and no sandbox tests (`make test-kernels` runs those)
        "BPFSLEUTH_KERNELS_STEPS": "doctor,probe_smoke,resolver,scenarios",
        "BPFSLEUTH_KERNELS_SCENARIOS": "connection_refused",
    }
    started = time.monotonic()
    proc = subprocess.run(
        # the VM's own deadline: a guest that hangs (TCG under load) ends the run with exit 2
        [
            *(sys.executable, str(DRIVER), "run", "--kernels", "5.10"),
            *("--timeout", str(VM_LIMIT_S), "--results", str(results)),
        ],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        env=env,
    )
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    sys.stderr.write(out)  # the driver's timings, shown with -s
    data = json.loads(results.read_text()) if results.is_file() else {}
    return proc.returncode, out, data, took


def _kernel(data: dict[str, Any], out: str) -> dict[str, Any]:
    entry = data.get("kernels", {}).get("5.10")
    assert entry is not None, out[-3000:]
    return dict(entry)


@pytest.mark.timeout(LIMIT_S + 60)
def test_the_smoke_run_passes_and_leaves_nothing(
    smoke: tuple[int, str, dict[str, Any], float],
) -> None:
    rc, out, data, _ = smoke
    assert rc == 0, out[-3000:]
    entry = _kernel(data, out)
    assert entry["status"] == "ran"
    assert entry["kernel"]["release"].startswith("5.10.")
    # which accelerator ran, and why (auto: a bounded KVM probe boot, accel.py)
    assert entry["accel"] in ("kvm", "tcg") and entry["accel_why"], entry
    assert f"booting 5.10 ({entry['accel']})" in out
    found = re.search(r"run directory (\S+)", out)
    assert found, out
    run_dir = found.group(1)
    assert not Path(run_dir).exists(), f"run directory {run_dir} left behind"
    assert not qemu_processes(run_dir), "a QEMU process outlived its run"
    assert run_dir not in Path("/proc/mounts").read_text()


@pytest.mark.timeout(LIMIT_S + 60)
def test_the_doctor_reports_this_kernel(smoke: tuple[int, str, dict[str, Any], float]) -> None:
    _, out, data, _ = smoke
    entry = _kernel(data, out)
    checks = {c["name"]: c for c in entry["doctor_checks"]}
    for name in ("root", "tracefs", "bcc", "kernel headers", "bpf tracepoint", "bpf kprobe"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "5.10." in checks["kernel"]["detail"]
    probes = sorted(p.parent.name for p in CATALOG.glob("*/probe.yaml"))
    for probe in probes:
        assert checks[f"probe {probe}"]["status"] == "ok", checks[f"probe {probe}"]
    # 5.10 has no lock:contention_begin (5.19): the doctor names what lock_contention goes without
    assert "lock:contention_begin" in checks["probe lock_contention"]["detail"]


@pytest.mark.timeout(LIMIT_S + 60)
def test_every_probe_compiles_and_attaches(smoke: tuple[int, str, dict[str, Any], float]) -> None:
    _, out, data, _ = smoke
    entry = _kernel(data, out)
    probes = sorted(p.parent.name for p in CATALOG.glob("*/probe.yaml"))
    compiled = entry["probe_smoke"]
    assert sorted(compiled) == probes
    for probe in probes:
        cell = compiled[probe]
        assert cell["status"] == "pass", (probe, cell)
        assert cell["compile_s"] > 0 and cell["attach_points"], (probe, cell)
        assert data["matrix"][probe]["5.10"]["status"] == "attached", probe


@pytest.mark.timeout(LIMIT_S + 60)
def test_the_resolver_forms_and_a_scenario(smoke: tuple[int, str, dict[str, Any], float]) -> None:
    _, out, data, _ = smoke
    entry = _kernel(data, out)
    rows = entry["resolver"]
    assert rows and all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
    forms = {(r["kind"], r["target"]) for r in rows}
    assert {("kprobe", "tcp_connect"), ("kretprobe", "tcp_connect")} <= forms
    assert entry["kernel"]["kprobe_symbols"]["tcp_connect"] is True
    scenarios = entry["scenarios"]
    assert [s["name"] for s in scenarios] == [
        "test_the_offline_planner_names_the_culprit[connection_refused]"
    ], scenarios
    assert scenarios[0]["outcome"] == "passed", scenarios[0]
