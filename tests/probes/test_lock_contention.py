"""lock_contention on the real kernel: a pthread program whose threads take turns on one mutex
(each holding it ~1 ms) must come out as the top waiter, with futex waits of a few ms."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.engine.budget import expand_attach_points
from probes.engine.runner import ProbeProgress, ProgressCallback, run_probe
from probes.engine.tracefs import tracepoint_exists
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.params import ProbeRequestError
from probes.resolver import resolve_key
from tests.support.ebpf import scaled
from tests.support.live_probe import save_example
from tests.support.workloads import compile_c

pytestmark = pytest.mark.ebpf

EXAMPLE = Path(__file__).resolve().parents[2] / "probes/catalog/lock_contention/example.json"
THREADS = 8
HOLD_NS = 1_000_000


def _lifetime_s() -> int:
    return int(scaled(20))  # a leaked workload ends by itself


def _compile(tmp_path: Path, source: str, name: str) -> Path:
    return compile_c(
        source, tmp_path, name, flags=("-O2", "-pthread"), defines={"LIFETIME_S": _lifetime_s()}
    )


def _start(binary: Path, *args: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([str(binary), str(THREADS), *map(str, args)])
    time.sleep(0.3)  # threads started and contending
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def mutex_workload(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    yield from _start(
        _compile(tmp_path, "mutex_contention.c", "svc7"), HOLD_NS // 1000, _lifetime_s()
    )


@pytest.fixture
def mmap_program(tmp_path: Path) -> Path:
    return _compile(tmp_path, "mmap_churn.c", "svc9")


def _run(
    filters: ProbeFilters | None = None,
    params: dict[str, bool] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ProbeResult:
    request = ProbeRequest(
        probe="lock_contention",
        duration_s=2,
        filters=filters or ProbeFilters(),
        params=dict(params or {}),
    )
    result = run_probe(request, on_progress=on_progress)
    assert result.error is None, result.error
    return result


def test_mutex_waiters_are_the_top_waiter(mutex_workload: subprocess.Popen[bytes]) -> None:
    result = _run()

    top = result.aggregates.top["processes"][0]
    assert top.labels["pid"] == mutex_workload.pid
    assert top.labels["comm"] == "svc7"
    # 7 of 8 threads are always waiting: ~7 s of waiting per 1 s of probe
    assert top.value is not None and top.value > 5_000
    # each wait lasts while the others hold the lock ~1 ms each: a few ms, not seconds
    assert 0.5 <= float(top.labels["p99_ms"]) <= 100
    waiter = result.aggregates.top["futex_waiters"][0]
    assert waiter.labels["pid"] == mutex_workload.pid
    assert waiter.labels["op"] == "wait"  # glibc: FUTEX_WAIT_PRIVATE
    assert waiter.count >= 200
    assert f"svc7 (pid {mutex_workload.pid})" in result.summary
    assert "tracepoint:syscalls:sys_enter_futex" in expand_attach_points(result.attach_points)
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


def test_pid_filter_keeps_only_that_process(mutex_workload: subprocess.Popen[bytes]) -> None:
    result = _run(filters=ProbeFilters(pid=mutex_workload.pid), params={"kernel_locks": False})

    assert {e.labels["pid"] for e in result.aggregates.top["processes"]} == {mutex_workload.pid}
    futex = result.aggregates.latency["futex_wait"]
    assert futex.count >= 200
    assert futex.p50 is not None and futex.p99 is not None
    assert 0.5 <= futex.p50 <= futex.p99 <= 100
    assert result.aggregates.totals["kernel_lock_waits"] == 0
    assert all(e["process_id"] == mutex_workload.pid for e in result.events)


def test_kernel_lock_contention_names_the_process(mmap_program: Path) -> None:
    if not tracepoint_exists("lock", "contention_begin"):
        # before 5.19 (the matrix's 5.10): kernel locks only would trace nothing, so it is refused
        # and says why (futex waits still run: the other tests)
        with pytest.raises(ProbeRequestError) as refused:
            run_probe(ProbeRequest(probe="lock_contention", duration_s=1, params={"futex": False}))
        assert "nothing to trace here: kernel_locks needs" in str(refused.value)
        assert "lock:contention_begin does not exist" in str(refused.value)
        return
    # threads mapping and unmapping memory contend on their process's mmap lock (a rwsem);
    # started once the probe is attached, so that they do not slow its compilation
    procs: list[subprocess.Popen[bytes]] = []

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached" and not procs:
            procs.append(subprocess.Popen([str(mmap_program), str(THREADS)]))

    try:
        result = _run(params={"futex": False}, on_progress=on_progress)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert procs, "the probe never reported attached"
    mmap_workload = procs[0]

    assert result.aggregates.totals["futex_waits"] == 0
    top = result.aggregates.top["processes"][0]
    assert top.labels["pid"] == mmap_workload.pid
    assert top.labels["comm"] == "svc9"
    lock = result.aggregates.top["kernel_locks"][0]
    assert lock.key.startswith("rwsem")
    assert lock.labels["top_waiter_pid"] == mmap_workload.pid
    assert result.aggregates.latency["kernel_lock_wait"].count >= 100


def test_answers_resolve_to_this_probe() -> None:
    spec = load_catalog().probes["lock_contention"]
    kernel_locks_here = tracepoint_exists("lock", "contention_begin")
    for answer in spec.answers:
        resolved = resolve_key(answer)
        if not kernel_locks_here and spec.answer_params.get(answer, {}).get("futex") is False:
            # kernel locks only, on a kernel without lock:contention_begin (5.10): refused with
            # the reason, lock_contention (its futex waits) offered as the nearest probe
            assert resolved.how == "refused" and resolved.probe is None, (answer, resolved)
            assert "lock:contention_begin does not exist" in resolved.reason
            assert "lock_contention" in resolved.nearest
            continue
        assert resolved.probe == "lock_contention", (answer, resolved.reason)
    assert resolve_key("syscalls/sys_enter_futex").params == {"kernel_locks": False}
    assert resolve_key("kprobe:mutex_lock").params == {}


def test_example_is_a_real_result() -> None:
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "lock_contention"
    assert example.error is None
    assert example.aggregates.top["processes"][0].count > 0
    assert "top waiter" in example.summary
