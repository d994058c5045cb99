"""runq_latency, live: four CPU hogs starve a low-priority periodic sleeper on their CPU."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.engine.runner import run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.resolver import resolve_key
from tests.support.ebpf import scaled
from tests.support.workloads import compile_c

pytestmark = pytest.mark.ebpf

EXAMPLE = Path(__file__).resolve().parents[2] / "probes/catalog/runq_latency/example.json"


def _build(tmp_path: Path, source: str) -> Path:
    lifetime = int(scaled(60))
    return compile_c(
        source, tmp_path, flags=("-O1",), defines={"LIFETIME_S": lifetime, "NAPS": lifetime * 500}
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _save_example(result: ProbeResult) -> None:
    if os.environ.get("BPFSLEUTH_UPDATE_EXAMPLES") == "1":
        EXAMPLE.write_text(result.model_dump_json(indent=2) + "\n")


def test_starved_sleeper_has_high_p99_and_the_hogs_are_named(tmp_path: Path) -> None:
    spin = _build(tmp_path, "spin.c")
    nap = _build(tmp_path, "nap.c")
    # All on one CPU; hogs at nice -15 (a reniced batch job), the sleeper at nice 5: the
    # starvation stays visible even when other tests keep this host busy.
    cpu = max(os.sched_getaffinity(0))

    def hog_setup() -> None:
        os.sched_setaffinity(0, {cpu})
        os.nice(-15)

    def sleeper_setup() -> None:
        os.sched_setaffinity(0, {cpu})
        os.nice(5)

    hogs = [subprocess.Popen([str(spin)], preexec_fn=hog_setup) for _ in range(4)]
    sleeper = subprocess.Popen([str(nap)], preexec_fn=sleeper_setup)
    try:
        time.sleep(0.3)
        result = run_probe(
            ProbeRequest(
                probe="runq_latency", duration_s=scaled(2.0), filters=ProbeFilters(comm=nap.name)
            )
        )
    finally:
        _stop([*hogs, sleeper])

    assert result.error is None, result.error
    assert "tracepoint:sched:sched_switch" in result.attach_points
    waiters = result.aggregates.top["waiters"]
    # The comm filter measured the sleeper's waits only: one process, many wakeups (up to 500/s
    # when it is not starved; far fewer when it is).
    assert [w.labels["pid"] for w in waiters] == [sleeper.pid]
    assert waiters[0].count >= 20
    p99_ms = waiters[0].value
    assert p99_ms is not None and 3.0 <= p99_ms <= 1000.0, p99_ms
    assert result.aggregates.latency["runq"].count == result.event_count >= 20

    hog_pids = {hog.pid for hog in hogs}
    # The sleeper's waits are charged to whoever ran just before it: the hogs sharing its CPU.
    # (Other busy processes on this host may be charged too: a hog must be among the top 3.)
    behind = [e for e in result.aggregates.top["behind"] if e.labels["pid"] in hog_pids]
    assert behind, result.aggregates.top["behind"]
    assert behind[0].key == f"{spin.name} (pid {behind[0].labels['pid']})"
    assert behind[0].value is not None and behind[0].value > 0.0
    on_cpu = [e for e in result.aggregates.top["on_cpu"] if e.labels["pid"] in hog_pids]
    assert on_cpu, result.aggregates.top["on_cpu"]
    for entry in on_cpu:
        assert entry.key.startswith(spin.name)
        assert 5.0 <= float(entry.labels["cpu_pct"]) <= 101.0
    assert f"{nap.name} (pid {sleeper.pid})" in result.summary
    assert any(f"{spin.name} (pid {pid})" in result.summary for pid in hog_pids), result.summary
    assert len(result.model_dump_json()) < 3000
    _save_example(result)


def test_every_answer_resolves_to_runq_latency() -> None:
    spec = load_catalog().probes["runq_latency"]
    assert "kprobe:finish_task_switch" in spec.answers
    for asked in spec.answers:
        resolved = resolve_key(asked)
        assert (resolved.how, resolved.probe) == ("answers", "runq_latency"), resolved.reason
