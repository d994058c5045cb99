"""memory_growth, live: a process grows its heap by a random number of MB in steps and keeps it,
beside one of the same name that allocates and frees the same amount over and over; the probe
names the grower with its growth (within the measured RSS change) and does not list the churner
as growing.

A process that frees what it allocated inside the window has not grown: the probe's growth is
last minus first value of the window. (An earlier version of this test let its grower end, and
so free everything, inside the window, and read the probe's right answer of ~0 MB as a bug.)"""

from __future__ import annotations

import random
import secrets

import pytest

from probes.catalog import load_catalog
from probes.models import ProbeFilters, ProbeResult
from tests.support.ebpf import scaled
from tests.support.live_probe import Workload, run_around, save_example
from tests.support.paths import example_json

EXAMPLE = example_json("memory_growth")
_PRELUDE = r"""
import json, sys, time
steps, step_mb, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open("/proc/self/comm", "w") as f:
    f.write(name)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
def touched(mb):
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):  # calloc'd pages are not resident until written
        block[i] = 1
    return block
print(json.dumps({}), flush=True)
sys.stdin.readline()
"""
GROWER = (
    _PRELUDE
    + r"""
before = rss()
kept = [touched(step_mb) for _ in range(steps) if time.sleep(0.05) is None]
print(json.dumps({"grown": rss() - before}), flush=True)
sys.stdin.readline()  # keeps its memory until the test is done with it (stdin closed)
"""
)
CHURNER = (
    _PRELUDE
    + r"""
import mmap, select
def mapped(mb):  # its own mapping, unmapped on close: freed whatever malloc would keep
    block = mmap.mmap(-1, mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block
before, peak = rss(), 0
while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes stdin
    blocks = [mapped(step_mb) for _ in range(steps)]
    peak = max(peak, rss() - before)
    for block in blocks:
        block.close()
    del blocks
    time.sleep(0.05)
print(json.dumps({"peak": peak, "kept": rss() - before}), flush=True)
"""
)


@pytest.mark.ebpf
def test_a_growing_process_is_named_with_its_growth_and_a_churner_is_not() -> None:
    steps, step_mb = random.randint(5, 12), random.randint(2, 6)
    name = f"leak{secrets.token_hex(3)}"
    work = Workload(GROWER, str(steps), str(step_mb), name)
    churner = Workload(CHURNER, str(steps), str(step_mb), name)
    try:
        churner.go()  # churns from before the probe attaches until finish() closes its stdin
        # the window stretched where the workloads run slower (TCG guests: docs/kernels.md)
        result = run_around(
            "memory_growth", work, duration_s=scaled(2.5), filters=ProbeFilters(comm=name)
        )
        done, churned = work.finish(), churner.finish()
    finally:
        work.kill()
        churner.kill()
    growers = result.aggregates.top["growers"]
    grower = growers[0]
    assert grower.labels["pid"] == work.pid and grower.labels["comm"] == name
    grown_mb = done["grown"] / 2**20
    assert grown_mb >= steps * step_mb * 0.9
    assert abs(float(grower.labels["growth_mb"]) - grown_mb) <= max(2.0, 0.1 * grown_mb)
    assert float(grower.labels["anon_growth_mb"]) >= steps * step_mb * 0.8
    assert f"grows most {name} (pid {work.pid})" in result.summary
    # the churner really did allocate as much, and gave it back: the probe must not call it a grower
    assert churned["peak"] / 2**20 >= steps * step_mb * 0.9
    kept_mb = churned["kept"] / 2**20  # interpreter's own heap: a couple of MB at most
    assert kept_mb < steps * step_mb * 0.25
    # a churner is never a grower (whatever point of its cycle the window ended on); it is
    # listed apart with what it freed, at least the window's share of its cycles
    assert all(entry.labels["pid"] != churner.pid for entry in growers)
    churners = result.aggregates.top["churners"]
    assert churners[0].labels["pid"] == churner.pid
    assert float(churners[0].labels["freed_mb"]) >= steps * step_mb * 0.9
    assert f"churns most {name} (pid {churner.pid})" in result.summary
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


def test_spec_and_example() -> None:
    spec = load_catalog().probes["memory_growth"]
    assert spec.attach[0].any_of[0].target == "kmem:rss_stat"
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "memory_growth" and example.aggregates.top["growers"]
