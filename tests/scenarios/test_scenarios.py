"""Incident scenarios: a real fault per test, investigated by the real loop with the offline
planner, the real policy, executor and probes; the resolution must name the culprit (process
and pid, port, path, server, cgroup: see each scenario's ground truth in workloads.py) in both
`root_cause` and `ebpf_evidence`. Timings go to bench/scenarios.py, not here."""

from __future__ import annotations

import pytest

from tests.support.workloads.scenarios import SCENARIOS, NoMemoryCgroup, Scenario, run_scenario

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_offline_planner_names_the_culprit(scenario: Scenario) -> None:
    try:
        outcome = run_scenario(scenario)  # in a fresh /tmp/w<random> directory
    except NoMemoryCgroup as exc:
        pytest.skip(str(exc))
    detail = f"root cause: {outcome.root_cause}\nevidence: {outcome.ebpf_evidence}\n{outcome.note}"
    assert outcome.missing_in_root_cause == [], detail
    assert outcome.missing_in_evidence == [], detail
    assert outcome.confidence in {"High", "Medium"}, detail
    assert outcome.iterations >= 2  # concluded from evidence, after the triage ran
