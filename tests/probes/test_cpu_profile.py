"""cpu_profile, live: a two-thread C program spends its time in one function, then exits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from probes.engine.runner import ProbeProgress, run_probe
from probes.models import ProbeFilters, ProbeRequest
from tests.support.live_probe import save_example
from tests.support.paths import example_json
from tests.support.workloads import compile_c

# Frame pointers in every function: Debian's gcc at -O1 still drops them in leaf functions.
HOT_FLAGS = ("-O0", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer", "-pthread")
EXAMPLE = example_json("cpu_profile")


@pytest.mark.ebpf
def test_hot_function_of_an_exited_process_is_found_and_symbolised(tmp_path: Path) -> None:
    binary = compile_c("hot_function.c", tmp_path, flags=HOT_FLAGS)
    started: list[subprocess.Popen[bytes]] = []

    def start_when_attached(progress: ProbeProgress) -> None:
        if progress.phase == "attached" and not started:
            started.append(subprocess.Popen([str(binary)], stdout=subprocess.DEVNULL))

    try:
        # Filtered on the workload's comm: other tests may keep both CPUs busy meanwhile.
        request = ProbeRequest(
            probe="cpu_profile",
            duration_s=2.5,
            params={"frequency": 99},
            filters=ProbeFilters(comm=binary.name),
        )
        result = run_probe(request, on_progress=start_when_attached)
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
    assert started, "the probe never reported attached"
    pid = started[0].pid
    # The workload exited (after ~1 s) before the probe stopped and symbolised its stacks.
    assert started[0].returncode == 0

    assert result.error is None, result.error
    assert result.attach_points == ["perf_event:software:cpu_clock"]
    functions = result.aggregates.top["functions"]
    assert functions[0].key == "compute_step", functions
    assert functions[0].labels == {"module": binary.name, "pid": pid}
    # at most 2 CPUs x 99 Hz x ~1 s of the workload; fewer when other processes compete
    assert 10 <= functions[0].count <= 2 * 99 * 1.5
    assert functions[0].count >= 0.8 * result.event_count
    processes = result.aggregates.top["processes"]
    assert [p.labels["pid"] for p in processes] == [pid]
    assert processes[0].key == f"{binary.name} (pid {pid})"
    assert 5.0 <= float(processes[0].labels["cpu_pct"]) <= 220.0

    ours = [line for line in result.aggregates.folded_stacks if line.startswith(f"{binary.name};")]
    assert ours, result.aggregates.folded_stacks
    stack, _, count = ours[0].rpartition(" ")
    assert int(count) >= 5
    assert stack.endswith(";spin;compute_step"), stack
    assert 1 <= len(result.aggregates.folded_stacks) <= 5
    assert f"{binary.name} (pid {pid})" in result.summary and "compute_step" in result.summary
    assert len(result.model_dump_json()) < 3000
    save_example(result)


def test_every_answer_resolves_to_cpu_profile() -> None:
    from probes.catalog import load_catalog
    from probes.resolver import resolve_key, resolve_target

    spec = load_catalog().probes["cpu_profile"]
    for asked in spec.answers:
        resolved = resolve_key(asked)
        assert (resolved.how, resolved.probe) == ("answers", "cpu_profile"), resolved.reason
    # as a model writes it: {"type": "tracepoint", "target": "perf:cpu-clock"}
    assert resolve_target("tracepoint", "perf:cpu-clock").probe == "cpu_profile"
