"""runq_latency, live: four CPU hogs on a 2-core host starve a low-priority periodic sleeper."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.runner import run_probe
from tests.helpers import require_ebpf

pytestmark = pytest.mark.ebpf

EXAMPLE = Path(__file__).resolve().parents[2] / "probes/catalog/runq_latency/example.json"

# Busy loop for at most 20 s (a leaked process ends by itself).
SPIN_C = r"""
#include <time.h>
int main(void) {
    volatile unsigned long x = 0;
    time_t end = time(0) + 20;
    for (;;) {
        for (int i = 0; i < 10000000; i++) x += i;
        if (time(0) > end) return 0;
    }
}
"""

# Sleeps 2 ms, ten thousand times (20 s at most).
NAP_C = r"""
#include <time.h>
int main(void) {
    struct timespec ts = {0, 2000000};
    for (int i = 0; i < 10000; i++) nanosleep(&ts, 0);
    return 0;
}
"""


def _build(tmp_path: Path, source: str) -> Path:
    name = f"w{secrets.token_hex(3)}"
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    subprocess.run(["gcc", "-O1", "-o", str(tmp_path / name), str(src)], check=True)
    return tmp_path / name


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _save_example(result: ProbeResult) -> None:
    if os.environ.get("BPFSLEUTH_UPDATE_EXAMPLES") == "1":
        EXAMPLE.write_text(result.model_dump_json(indent=2) + "\n")


def test_starved_sleeper_has_high_p99_and_the_hogs_are_named(tmp_path: Path) -> None:
    require_ebpf()
    spin = _build(tmp_path, SPIN_C)
    nap = _build(tmp_path, NAP_C)
    hogs = [subprocess.Popen([str(spin)]) for _ in range(4)]
    sleeper = subprocess.Popen([str(nap)], preexec_fn=lambda: os.nice(10))
    try:
        time.sleep(0.3)
        result = run_probe(
            ProbeRequest(probe="runq_latency", duration_s=2.0, filters=ProbeFilters(comm=nap.name))
        )
    finally:
        _stop([*hogs, sleeper])

    assert result.error is None, result.error
    assert "tracepoint:sched:sched_switch" in result.attach_points
    waiters = result.aggregates.top["waiters"]
    # The comm filter measured the sleeper's waits only: one process, hundreds of wakeups.
    assert [w.labels["pid"] for w in waiters] == [sleeper.pid]
    assert waiters[0].count >= 100
    p99_ms = waiters[0].value
    assert p99_ms is not None and 3.0 <= p99_ms <= 1000.0, p99_ms
    assert result.aggregates.latency["runq"].count == result.event_count >= 100

    hog_pids = {hog.pid for hog in hogs}
    on_cpu = {int(e.labels["pid"]) for e in result.aggregates.top["on_cpu"]}
    assert len(on_cpu & hog_pids) >= 2, result.aggregates.top["on_cpu"]
    for entry in result.aggregates.top["on_cpu"]:
        if entry.labels["pid"] in hog_pids:
            assert entry.key.startswith(spin.name)
            assert 10.0 <= float(entry.labels["cpu_pct"]) <= 101.0
    assert f"{nap.name} (pid {sleeper.pid})" in result.summary
    assert any(f"{spin.name} (pid {pid})" in result.summary for pid in hog_pids), result.summary
    assert len(result.model_dump_json()) < 3000
    _save_example(result)


def test_every_answer_resolves_to_runq_latency() -> None:
    from probes.catalog import load_catalog
    from probes.resolver import resolve_key

    spec = load_catalog().probes["runq_latency"]
    assert "kprobe:finish_task_switch" in spec.answers
    for asked in spec.answers:
        resolved = resolve_key(asked)
        assert (resolved.how, resolved.probe) == ("answers", "runq_latency"), resolved.reason
