"""memory_growth, live: a process grows its heap by a random number of MB in steps, beside one
that allocates and frees the same amount; the probe names the grower with its growth (within the
measured RSS change) and does not list the steady one as growing."""

from __future__ import annotations

import random
import secrets

import pytest

from probes.catalog import load_catalog
from probes.models import ProbeFilters, ProbeResult
from tests.support.live_probe import Workload, run_around, save_example
from tests.support.paths import example_json

EXAMPLE = example_json("memory_growth")
GROWER = r"""
import json, sys, time
steps, step_mb, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open("/proc/self/comm", "w") as f:
    f.write(name)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
print(json.dumps({}), flush=True)
sys.stdin.readline()
before = rss()
kept = []
for _ in range(steps):
    block = bytearray(step_mb * 1024 * 1024)
    for i in range(0, len(block), 4096):  # calloc'd pages are not resident until written
        block[i] = 1
    kept.append(block)
    time.sleep(0.05)
print(json.dumps({"grown": rss() - before}), flush=True)
"""


@pytest.mark.xfail(
    strict=True,
    reason="known bug: a burst of growth in the first half second of the window is reported as "
    "~0.1 MB (a steady grower over seconds is measured right; see the closing note of issue 11)",
)
@pytest.mark.ebpf
def test_a_growing_process_is_named_with_its_growth() -> None:
    steps, step_mb = random.randint(5, 12), random.randint(2, 6)
    name = f"leak{secrets.token_hex(3)}"
    work = Workload(GROWER, str(steps), str(step_mb), name)
    try:
        result = run_around("memory_growth", work, duration_s=2.5, filters=ProbeFilters(comm=name))
        done = work.finish()
    finally:
        work.kill()
    grower = result.aggregates.top["growers"][0]
    assert grower.labels["pid"] == work.pid and grower.labels["comm"] == name
    grown_mb = done["grown"] / 2**20
    assert grown_mb >= steps * step_mb * 0.9
    assert abs(float(grower.labels["growth_mb"]) - grown_mb) <= max(2.0, 0.1 * grown_mb)
    assert float(grower.labels["anon_growth_mb"]) >= steps * step_mb * 0.8
    assert f"grows most {name} (pid {work.pid})" in result.summary
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


def test_spec_and_example() -> None:
    spec = load_catalog().probes["memory_growth"]
    assert spec.attach[0].any_of[0].target == "kmem:rss_stat"
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "memory_growth" and example.aggregates.top["growers"]
