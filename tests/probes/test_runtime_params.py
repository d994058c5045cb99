"""Filters and run-time parameters are map values (probes/common.h `bs_config`): a probe compiled
once ahead of need (runner.precompile_catalog) serves requests with different pid and comm
filters and parameters without compiling again, and each request's filter holds in the kernel.

Two workloads with random names fail to open random missing files a random number of times, at
the same time; each request filters on one of them and must count exactly that one."""

from __future__ import annotations

import random
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.engine import runner
from probes.engine.runner import (
    ProbeProgress,
    compile_count,
    keep_compiled,
    precompile_catalog,
    run_probes,
    wait_precompiled,
)
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from tests.support.live_probe import Workload

pytestmark = pytest.mark.ebpf

SCRIPT = r"""
import ctypes, json, os, sys
ctypes.CDLL(None).prctl(15, sys.argv[2].encode(), 0, 0, 0)  # PR_SET_NAME
missing = os.path.join(sys.argv[1], sys.argv[3])
present = os.path.join(sys.argv[1], "present-" + sys.argv[3])
open(present, "w").close()
print(json.dumps({"missing": missing}), flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[4])):
    try:
        open(missing)
    except FileNotFoundError:
        pass
    open(present).close()
print(json.dumps({}), flush=True)
"""


def _word(length: int) -> str:
    return "".join(random.choices(string.ascii_lowercase, k=length))


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"{_word(5)}-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def precompiled() -> Iterator[None]:
    keep_compiled(2)
    yield
    keep_compiled(0)


def _pair(workdir: Path) -> list[Workload]:
    """Two workloads with distinct random comms, files and counts."""
    comms = random.sample([_word(random.randint(4, 15)) for _ in range(4)], 2)
    return [
        Workload(SCRIPT, str(workdir), comm, f"{_word(8)}.conf", str(random.randint(40, 160)))
        for comm in comms
    ]


def _run(request: ProbeRequest, workloads: list[Workload]) -> ProbeResult:
    """Run `request` (from this thread: kept processes die with it), release both workloads
    once attached, return the result."""

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached":
            for workload in workloads:
                workload.go()

    try:
        [result] = run_probes([request], on_progress=on_progress)
        for workload in workloads:
            workload.finish()
    finally:
        for workload in workloads:
            workload.kill()
    assert result.error is None, result.error
    return result


def _failed_paths(result: ProbeResult) -> dict[str, int]:
    return {str(row.labels["path"]): row.count for row in result.aggregates.top["failures"]}


def test_one_compiled_probe_serves_other_filters_and_params_and_each_filter_holds(
    precompiled: None, workdir: Path
) -> None:
    before = compile_count()
    assert precompile_catalog(["file_opens"]) == ["file_opens"]
    assert compile_count() == before + 1
    assert wait_precompiled(180), "the precompile did not finish"
    [proc] = runner._KEPT.idle.values()

    # 1: a pid filter, default parameters
    first_pair = _pair(workdir)
    target, other = first_pair
    count = int(target.proc.args[-1])  # type: ignore[index]
    first = _run(
        ProbeRequest(probe="file_opens", duration_s=2, filters=ProbeFilters(pid=target.pid)),
        first_pair,
    )
    assert first.compile_s == 0.0
    assert first.aggregates.totals["failures"] == count
    assert first.aggregates.totals["opens"] == 2 * count
    assert _failed_paths(first) == {target.setup["missing"]: count}
    assert other.setup["missing"] not in first.model_dump_json()

    # 2: a comm filter on another process, a run-time parameter changed
    second_pair = _pair(workdir)
    other, target = second_pair
    count = int(target.proc.args[-1])  # type: ignore[index]
    second = _run(
        ProbeRequest(
            probe="file_opens",
            duration_s=2,
            filters=ProbeFilters(comm=target.comm),
            params={"failures_only": True},
        ),
        second_pair,
    )
    assert second.compile_s == 0.0
    assert second.aggregates.totals["failures"] == count
    assert _failed_paths(second) == {target.setup["missing"]: count}
    assert other.setup["missing"] not in second.model_dump_json()

    assert compile_count() == before + 1  # neither request compiled
    assert list(runner._KEPT.idle.values()) == [proc]  # the precompiled process served both
