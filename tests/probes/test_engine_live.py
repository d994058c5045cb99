"""The runner, live: probes of one plan run together; a killed runner leaves nothing attached; a
terminated probe detaches and still reports; results stay small however busy the host is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.engine.runner import run_probes
from probes.models import ProbeRequest
from tests.support.live_probe import Workload, run_around

pytestmark = pytest.mark.ebpf

RUNNER = r"""
import sys
from probes.models import ProbeRequest
from probes.engine.runner import run_probe
result = run_probe(
    ProbeRequest(probe=sys.argv[1], duration_s=float(sys.argv[2])),
    on_progress=lambda p: print(p.phase, flush=True),
)
print("RESULT " + result.model_dump_json(), flush=True)
"""


def _loaded_prog_ids() -> set[int]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    return {int(p["id"]) for p in json.loads(out.stdout or "[]")}


def _prog_ids_of(pid: int) -> set[int]:
    ids = set()
    for fdinfo in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            for line in fdinfo.read_text().splitlines():
                if line.startswith("prog_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def _start_runner(probe: str, duration: float) -> tuple[subprocess.Popen[str], int]:
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, probe, str(duration)], stdout=subprocess.PIPE, text=True
    )
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.strip() == "attached":
            break
    else:
        pytest.fail("the probe never attached")
    children = subprocess.run(
        ["pgrep", "-P", str(runner.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 1
    return runner, int(children[0])


def _wait_gone(pid: int, prog_ids: set[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = Path(f"/proc/{pid}").exists()
        left = prog_ids & _loaded_prog_ids()
        if not alive and not left:
            return
        time.sleep(0.2)
    pytest.fail(f"after the kill: process alive={alive}, programs still loaded={sorted(left)}")


@pytest.mark.skipif(not Path("/usr/sbin/bpftool").exists(), reason="bpftool not installed")
def test_sigkill_of_the_runner_leaves_nothing_attached() -> None:
    runner, child = _start_runner("tcp_connect", 30)
    prog_ids = _prog_ids_of(child)
    assert prog_ids and prog_ids <= _loaded_prog_ids()
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    _wait_gone(child, prog_ids)


@pytest.mark.skipif(not Path("/usr/sbin/bpftool").exists(), reason="bpftool not installed")
def test_sigterm_stops_a_probe_early_detaches_and_still_reports() -> None:
    runner, child = _start_runner("file_opens", 30)
    prog_ids = _prog_ids_of(child)
    assert prog_ids
    started = time.monotonic()
    os.kill(child, signal.SIGTERM)
    out, _ = runner.communicate(timeout=20)
    assert time.monotonic() - started < 15  # did not run its 30 s
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["error"] is None
    assert any("stopped early by SIGTERM" in w for w in result["warnings"])
    assert result["duration_s"] < 15
    _wait_gone(child, prog_ids)


def test_probes_of_one_plan_run_together_and_keep_their_order() -> None:
    requests = [
        ProbeRequest(probe="tcp_connect", label="a", duration_s=2),
        ProbeRequest(probe="file_opens", label="b", duration_s=2),
        ProbeRequest(probe="no_such_probe", label="c", duration_s=2),
        ProbeRequest(probe="exec", label="d", duration_s=2),
        ProbeRequest(
            probe="tracepoint",
            label="e",
            duration_s=2,
            params={"tracepoint": "sched:sched_process_fork"},
        ),
    ]
    phases: list[tuple[str, str]] = []
    results = run_probes(requests, on_progress=lambda p: phases.append((p.label, p.phase)))
    assert [r.program_name for r in results] == ["a", "b", "c", "d", "e"]
    assert results[2].error is not None
    for result in (results[0], results[1], results[3], results[4]):
        assert result.error is None, result.error
        assert result.attach_points and result.compile_s > 0
        assert 1.9 <= result.duration_s <= 3.5
    # every probe was attached before the first one finished: they ran concurrently
    first_done = next(i for i, (_, phase) in enumerate(phases) if phase in ("done", "failed"))
    attached = {label for label, phase in phases[:first_done] if phase == "attached"}
    assert attached == {"a", "b", "d", "e"}


BUSY = r"""
import json, os, socket, struct, sys
print(json.dumps({}), flush=True)
sys.stdin.readline()
base = os.path.join(sys.argv[1], "d" * 60, "e" * 60)   # long paths: 130+ bytes each
for i in range(3000):                                  # 3000 distinct missing paths
    try:
        open(os.path.join(base, f"settings-{i}.conf"))
    except FileNotFoundError:
        pass
for i in range(300):                                   # 300 distinct refused ports
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 1 + i))
    except OSError:
        pass
    s.close()
print(json.dumps({}), flush=True)
"""


@pytest.mark.parametrize("probe", ["file_opens", "tcp_connect"])
def test_a_busy_result_stays_small(probe: str, tmp_path: Path) -> None:
    workload = Workload(BUSY, str(tmp_path))
    result = run_around(probe, workload, duration_s=3.0)
    workload.finish()
    assert result.event_count >= 300
    size = len(result.model_dump_json())
    assert size < 3000, f"{probe} result is {size} characters"


def test_a_probe_past_its_deadline_is_stopped_and_still_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner's deadline is compile budget + duration + grace; with a budget below zero the
    probe is still tracing when the deadline passes: it is told to stop, detaches, reports."""
    import probes.engine.runner as runner

    # Deadline = start + 3.5 s: inside the 4 s of tracing however fast the compile was (a warm
    # or kept process compiles in well under the 0.5 s the old budget assumed).
    monkeypatch.setattr(runner, "COMPILE_BUDGET_S", -1.0)
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.5)
    started = time.monotonic()
    [result] = run_probes([ProbeRequest(probe="tcp_connect", duration_s=4)])
    assert time.monotonic() - started < 4 + 5
    assert result.error is None, result.error
    assert any("stopped early by SIGTERM" in w for w in result.warnings)
    assert result.duration_s < 4


BUSY_EXEC = r"""
import json, subprocess, sys
print(json.dumps({}), flush=True)
sys.stdin.readline()
for i in range(40):              # long, distinct argv; long failing paths; varied exit codes
    subprocess.run(["/bin/true"] + [("a%02d" % i) * 15 + str(j) for j in range(8)])
    try:
        subprocess.run([f"/opt/{'b' * 80}/{i}/bin/tool"])
    except FileNotFoundError:
        pass
    subprocess.run(["/bin/sh", "-c", f"exit {i % 7}"])
print(json.dumps({}), flush=True)
"""


def test_a_busy_exec_result_stays_small() -> None:
    workload = Workload(BUSY_EXEC)
    result = run_around("exec", workload, duration_s=3.0, by_pid=False)
    workload.finish()
    assert result.aggregates.totals["execs"] >= 80
    size = len(result.model_dump_json())
    assert size < 3000, f"exec result is {size} characters"
