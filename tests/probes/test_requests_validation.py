"""Bad requests get a clear error and nothing is loaded."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from probes.catalog import load_catalog
from probes.engine.runner import prepare, run_probes
from probes.models import ProbeFilters, ProbeRequest
from probes.params import ProbeRequestError


@pytest.mark.parametrize("duration", [0, -1, 3600])
def test_duration_out_of_bounds_is_rejected(duration: float) -> None:
    with pytest.raises(ValidationError, match="duration_s"):
        ProbeRequest(probe="tcp_connect", duration_s=duration)


def test_duration_above_the_probe_max_is_rejected() -> None:
    bounded = [s for s in load_catalog().probes.values() if s.duration.max < 60]
    if not bounded:
        pytest.skip("every probe allows the protocol's 60 s maximum")
    spec = bounded[0]
    with pytest.raises(ProbeRequestError, match="at most"):
        prepare(ProbeRequest(probe=spec.name, duration_s=spec.duration.max + 1))


def test_long_comm_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at most 15"):
        ProbeFilters(comm="x" * 100)


@pytest.mark.parametrize("pid", [-1, 0, 10**9])
def test_bad_pid_is_rejected(pid: int) -> None:
    with pytest.raises(ValidationError):
        ProbeFilters(pid=pid)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sample_limit": 100000}, "out of range"),
        ({"sample_limit": "12; system()"}, "integer"),
        ({"no_such": 1}, "no parameter"),
        ({"syscall_errors": "maybe"}, "true or false"),
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object], message: str) -> None:
    with pytest.raises(ProbeRequestError, match=message):
        prepare(ProbeRequest(probe="tcp_connect", duration_s=1, params=params))  # type: ignore[arg-type]


def test_unknown_probe_names_the_nearest() -> None:
    with pytest.raises(ProbeRequestError, match="nearest: tcp_connect"):
        prepare(ProbeRequest(probe="tcp_conect", duration_s=1))


def test_filters_become_map_values_never_c() -> None:
    pid = random.randint(2, 4_000_000)
    prepared = prepare(
        ProbeRequest(probe="file_opens", duration_s=1, filters=ProbeFilters(pid=pid, comm='a"b)c'))
    )
    assert prepared.config.pid == pid and prepared.config.comm == b'a"b)c'
    assert not any(str(pid) in flag or "b)c" in flag for flag in prepared.cflags)
    assert not any("FILTER" in flag or "SELF_PID" in flag for flag in prepared.cflags)


def test_runtime_parameters_are_map_slots_and_the_rest_numeric_defines() -> None:
    limit = random.randint(0, 256)
    prepared = prepare(
        ProbeRequest(
            probe="tcp_connect",
            duration_s=1,
            params={"sample_limit": str(limit), "syscall_errors": False},
        )
    )
    # sample_limit is `runtime: true`: its macro reads slot 0, its value goes to the map
    assert "-DSAMPLE_LIMIT=bs_param(0)" in prepared.cflags
    assert prepared.config.params == [limit]
    # syscall_errors decides which programs exist: still a compile-time define
    assert "-DSYSCALL_ERRORS=0" in prepared.cflags


def test_requests_differing_only_in_filters_and_runtime_params_share_compile_flags() -> None:
    first = prepare(ProbeRequest(probe="syscall_errors", duration_s=1))
    second = prepare(
        ProbeRequest(
            probe="syscall_errors",
            duration_s=2,
            filters=ProbeFilters(pid=random.randint(2, 99_999), comm="other"),
            params={"errors_only": True, "sample_limit": random.randint(0, 256)},
        )
    )
    assert first.cflags == second.cflags
    assert first.config != second.config


def test_a_bad_request_in_a_plan_loads_nothing_and_reports_why() -> None:
    results = run_probes([ProbeRequest(probe="no_such_probe", label="x", duration_s=1)])
    assert len(results) == 1
    result = results[0]
    assert result.error is not None and "no catalog probe named" in result.error
    assert result.attach_points == [] and result.compile_s == 0
    assert result.program_name == "x"
