"""An operator drops a probe folder and a flow file into their folders, approves the probe once,
and both are used: by `bpfsleuth flows run`, by the offline planner and by the model (Claude
played by the local fake Messages API, real SDK). Everything else is real: bcc on this kernel,
the policy and executor, the loop."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.probes.test_custom_probes import approve, make_probe
from tests.support.fakes.anthropic_api import FakeAnthropic
from tests.support.live_probe import Workload
from tests.support.paths import REPO
from worker.backends.anthropic import AnthropicBackend
from worker.backends.offline.planner import OfflineBackend
from worker.flows.run import FlowRun
from worker.loop.investigation import Budgets, Investigation
from worker.loop.run import run_investigation
from worker.loop.system_prompt import local_system_prompt

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]
CLI = "from bot.cli import main; main()"

FLOW = """\
name: opens_flow
description: "Ledger service file churn: which process opens files, counted in the kernel."
categories: [file_io]
cues: [ledger]
steps:
  - id: ledger_opens
    type: sensor
    ref: ebpf.ledger_opens
    with: {duration: 3}
    output: {saveAs: opens}
  - id: ledger_listeners
    type: command
    run: "ss -tlnp"
    output: {saveAs: listeners}
"""

# Opens /dev/null in bursts for up to 60 s (killed when the test ends): it outlives the triage
# commands, the compile and the 3 s trace.
OPENER = """
import json, os, sys, time
print(json.dumps({}), flush=True)
end = time.time() + 60
while time.time() < end:
    for _ in range(50):
        os.close(os.open("/dev/null", os.O_RDONLY))
    time.sleep(0.01)
print(json.dumps({}), flush=True)
"""


@pytest.fixture
def operator_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    sensors = tmp_path / "sensors"
    flows = tmp_path / "flows"
    sensors.mkdir()
    flows.mkdir()
    approve(make_probe(sensors, "ledger_opens"), by="oncall-lead")
    (flows / "opens_flow.yaml").write_text(FLOW)
    env = {"BPFSLEUTH_PROBE_PATH": str(sensors), "BPFSLEUTH_FLOW_PATH": str(flows)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env


@pytest.fixture
def opener() -> Iterator[Workload]:
    workload = Workload(OPENER)
    workload.go()
    yield workload
    workload.kill()


def _custom_results(inv: Investigation) -> list[Any]:
    return [
        r
        for result in inv.results
        for r in result.ebpf_results.values()
        if r.probe == "ledger_opens"
    ]


def _counts_for(result: Any, pid: int) -> int:
    return sum(row.count for row in result.aggregates.top["opens"] if f"pid={pid}" in row.key)


def test_flows_run_uses_the_operator_probe_and_flow(
    operator_dirs: dict[str, str], opener: Workload
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLI, "flows", "run", "opens_flow", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **operator_dirs},
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run = FlowRun.model_validate_json(done.stdout)
    probe = run.outputs["opens"].probe
    assert probe is not None and probe.error is None, probe
    assert _counts_for(probe, opener.pid) > 100
    assert run.outputs["listeners"].command is not None
    assert run.outputs["listeners"].command.ran


def test_the_offline_planner_runs_the_operator_flow_for_a_cued_symptom(
    operator_dirs: dict[str, str], opener: Workload
) -> None:
    inv = run_investigation(
        "the ledger batch is slow since this morning",
        ["ops-1"],
        OfflineBackend(),
        budgets=Budgets(max_iterations=2),
    )
    first = inv.plans[0]
    assert "ledger_opens" in [p.name for p in first.ebpf_programs]
    [result] = _custom_results(inv)
    assert result.error is None, result.error
    assert _counts_for(result, opener.pid) > 100


def test_the_model_asks_for_the_operator_flow_by_name(
    operator_dirs: dict[str, str], opener: Workload
) -> None:
    replies = [
        {
            "reply": {
                "response_type": "diagnostic",
                "reasoning": "ledger churn",
                "flow": "opens_flow",
            }
        },
        {
            "reply": {
                "response_type": "resolution",
                "root_cause": "file churn",
                "resolution_plan": "1. cache the handle",
                "confidence": "Medium",
                "ebpf_evidence": "ledger_opens counts",
            }
        },
    ]
    system = local_system_prompt(["ops-1"], 3)
    assert "- `opens_flow`: Ledger service file churn" in system
    with FakeAnthropic(replies) as fake:
        backend = AnthropicBackend(
            api_key="sk-test", model="claude-test", base_url=fake.url, max_retries=0
        )
        inv = run_investigation(
            "ledger is slow",
            ["ops-1"],
            backend,
            system_prompt=system,
            budgets=Budgets(max_iterations=3),
        )
        assert fake.violations == []
    assert inv.resolution is not None and inv.resolution.root_cause == "file churn"
    plan = inv.plans[0]
    assert [p.name for p in plan.ebpf_programs] == ["ledger_opens"]
    assert [c.id for c in plan.commands] == ["ledger_listeners"]
    [result] = _custom_results(inv)
    assert _counts_for(result, opener.pid) > 100
    assert "ledger_opens" in fake.user_texts(1)[-1]  # its output went back to the model
