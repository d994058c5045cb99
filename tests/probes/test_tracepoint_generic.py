"""The generic tracepoint probe: counts any tracepoint by process; names are validated, never
compiled."""

from __future__ import annotations

import pytest

from probes.engine.runner import prepare
from probes.models import ProbeRequest
from probes.params import ProbeRequestError
from tests.support.live_probe import Workload, run_around, save_example

SCRIPT = r"""
import json, os, sys
print(json.dumps({}), flush=True)
sys.stdin.readline()
for _ in range(500):
    os.getppid()
    os.sched_yield()
print(json.dumps({}), flush=True)
"""


@pytest.mark.ebpf
def test_counts_a_syscall_tracepoint_for_one_process() -> None:
    workload = Workload(SCRIPT)
    result = run_around(
        "tracepoint", workload, duration_s=2.0, params={"tracepoint": "syscalls/sys_enter_getppid"}
    )
    workload.finish()
    assert result.attach_points == ["tracepoint:syscalls:sys_enter_getppid"]
    assert result.aggregates.totals["events"] == 500 == result.event_count
    top = result.aggregates.top["processes"][0]
    assert top.key == workload.label and top.count == 500
    assert "500 syscalls:sys_enter_getppid events" in result.summary
    save_example(result)


@pytest.mark.parametrize(
    "name",
    [
        "sched/sched_switch; rm -rf /",
        "../../etc/passwd",
        "sched/SCHED_SWITCH",
        "sched/",
        "nosuchcategory/nosuchevent",
        "sched/sched_switch\nint x;",
    ],
)
def test_bad_tracepoint_names_are_refused_before_anything_loads(name: str) -> None:
    with pytest.raises(ProbeRequestError):
        prepare(ProbeRequest(probe="tracepoint", duration_s=1, params={"tracepoint": name}))


def test_the_tracepoint_name_never_reaches_the_c() -> None:
    prepared = prepare(
        ProbeRequest(probe="tracepoint", duration_s=1, params={"tracepoint": "sched:sched_switch"})
    )
    assert not any("sched_switch" in flag.lower() for flag in prepared.cflags if "TP_" not in flag)
    assert prepared.plan.chosen[0].target == "sched:sched_switch"
    assert prepared.plan.chosen[0].fn == "on_event"
