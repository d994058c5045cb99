"""Roles behind a bool switch (`switch:` in probe.yaml) on the real tracefs: a kernel that lacks one
switch's roles still runs the probe for the others, says what it left out, and refuses a request
whose every switched-on part is missing here (the doctor names it). 5.10 lacks
lock:contention_begin: lock_contention with `futex: false` is such a request there."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from probes.capabilities import detect_capabilities
from probes.catalog import load_catalog
from probes.engine.plan import availability, plan_attach
from probes.engine.tracefs import tracepoint_exists
from probes.params import validate_params
from probes.spec import ProbeSpec
from worker.cli.doctor import _catalog_checks

pytestmark = pytest.mark.ebpf


def _spec(missing: str) -> ProbeSpec:
    """Two switches: `present` on sched:sched_switch, `absent` on a tracepoint no kernel has."""
    return ProbeSpec.model_validate(
        {
            "name": "demo",
            "description": "A demo probe for the switch tests.",
            "attach": [
                {
                    "role": "switches",
                    "switch": "present",
                    "any_of": [{"kind": "tracepoint", "target": "sched:sched_switch"}],
                },
                {
                    "role": "ghost waits",
                    "switch": "absent",
                    "required": False,
                    "any_of": [{"kind": "tracepoint", "target": f"sched:{missing}"}],
                },
            ],
            "params": {
                "present": {"type": "bool", "default": True, "define": "P", "description": "x"},
                "absent": {"type": "bool", "default": True, "define": "A", "description": "y"},
            },
            "duration": {"default": 5, "max": 10},
            "overhead": "low",
        }
    )


def test_a_missing_switch_is_left_out_and_a_run_of_only_it_refused() -> None:
    missing = f"ghost_{secrets.token_hex(4)}"
    spec = _spec(missing)

    both = plan_attach(spec, validate_params(spec, {}), use_cache=False)
    assert both.available
    assert [c.target for c in both.chosen] == ["sched:sched_switch"]
    assert both.skipped == [f"ghost waits: tracepoint sched:{missing} does not exist"]

    only_missing = plan_attach(spec, validate_params(spec, {"present": False}), use_cache=False)
    assert not only_missing.available
    assert only_missing.reason == (
        "nothing to trace here: absent needs ghost waits: "
        f"tracepoint sched:{missing} does not exist"
    )
    # the missing switch turned off: nothing is asked of this host that it lacks
    assert plan_attach(spec, validate_params(spec, {"absent": False}), use_cache=False).available


def test_a_switch_must_be_a_bool_parameter() -> None:
    spec = _spec("x").model_dump()
    spec["attach"][0]["switch"] = "nope"
    with pytest.raises(ValidationError, match="no bool parameter"):
        ProbeSpec.model_validate(spec)


def test_lock_contention_on_this_kernel_and_what_the_doctor_says() -> None:
    spec = load_catalog().probes["lock_contention"]
    has_kernel_locks = tracepoint_exists("lock", "contention_begin")
    kernel_only = plan_attach(spec, validate_params(spec, {"futex": False}), use_cache=False)
    assert kernel_only.available == has_kernel_locks, kernel_only.reason
    checks = _catalog_checks(detect_capabilities())
    check = {c.name: c for c in checks}["probe lock_contention"]
    assert check.status == "ok"  # futex waits work everywhere
    if not has_kernel_locks:  # 5.10 (lock:contention_begin came in 5.19)
        assert "lock:contention_begin does not exist" in kernel_only.reason
        assert "kernel_locks needs" in kernel_only.reason
        assert "lock:contention_begin" in check.detail
        assert any("contention_begin" in s for s in availability(spec).skipped)
    else:
        assert "contention_begin" not in check.detail
