"""Flows as data: built-in flows valid, operator flows checked against the catalog, policy and
analyzers with errors naming the file, step and nearest probes; the protocol's `flow` field, its
expansion in the loop, the model's flow list, and the offline planner's flow selection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO
from worker.backends.base import Evidence, ModelRequest
from worker.backends.offline.planner import OfflineBackend
from worker.flows.loader import FlowError, flow_problem, load_flow_file, load_flows
from worker.loop.flow_expansion import expand_flow
from worker.loop.system_prompt import local_system_prompt
from worker.protocol import CommandRequest, Diagnostic, ReplyError, parse_model_reply

REQUIRED = {
    "network_debug",
    "dns_debug",
    "cpu_saturation",
    "lock_contention",
    "disk_latency",
    "memory_pressure",
}

CHECKOUT_FLOW = """\
name: checkout_debug
description: "Checkout service: its listeners and its connects, the way the team debugs it."
categories: [network]
cues: [checkout]
steps:
  - id: checkout_listeners
    type: command
    run: "ss -tlnp"
    output: {saveAs: listeners}
  - id: checkout_connects
    type: sensor
    ref: ebpf.tcp_connect
    with: {duration: 2, sample_limit: 8}
    output: {saveAs: connects}
  - id: verdict
    type: analyse
    analyzers: [connect_failures]
    inputs: [connects, listeners]
"""


@pytest.fixture
def flow_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    monkeypatch.setenv("BPFSLEUTH_FLOW_PATH", str(folder))
    return folder


def write_flow(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_builtin_flow_loads_and_the_required_ones_exist() -> None:
    flows = load_flows()
    assert flows.broken == {}
    assert set(flows.names()) >= REQUIRED
    for name in flows.names():
        assert flows.source_of(name) == "builtin"
        assert flows.flows[name].sensors or flows.flows[name].triage


def test_a_flow_that_references_a_missing_probe_is_refused_naming_file_step_and_nearest(
    flow_dir: Path,
) -> None:
    text = CHECKOUT_FLOW.replace("ebpf.tcp_connect", "ebpf.tcp_conect").replace(
        "checkout_debug", "typo_flow"
    )
    path = write_flow(flow_dir, "typo_flow", text)
    with pytest.raises(FlowError) as caught:
        load_flow_file(path)
    message = str(caught.value)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "id: checkout_connects" in ln)
    assert message.startswith(f"{path}:{line}: flow typo_flow, step 'checkout_connects': ")
    assert "probe 'tcp_conect' is not in the catalog; nearest probes: tcp_connect" in message
    flows = load_flows()
    assert "typo_flow" not in flows and flows.broken["typo_flow"] == message
    assert set(flows.names()) >= REQUIRED  # a bad flow never hides the others


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("sample_limit: 8", "sample_limit: 100000"), "out of range"),
        (("duration: 2", "duration: 600"), "duration must be a number of seconds"),
        (('run: "ss -tlnp"', 'run: "rm -rf /tmp/x"'), "is not allowed to run unattended"),
        (("[connect_failures]", "[connect_failure]"), "no analyzer named connect_failure"),
        (("inputs: [connects, listeners]", "inputs: [later]"), "which no earlier step saves"),
        (("type: command", "type: shell"), "steps.0"),
    ],
)
def test_operator_flow_errors_say_what_is_wrong(
    flow_dir: Path, change: tuple[str, str], expected: str
) -> None:
    write_flow(flow_dir, "checkout_debug", CHECKOUT_FLOW.replace(*change))
    flows = load_flows()
    assert "checkout_debug" not in flows
    message = flows.broken["checkout_debug"]
    assert str(flow_dir / "checkout_debug.yaml") in message and expected in message


def test_an_operator_flow_may_not_take_a_builtin_name(flow_dir: Path) -> None:
    write_flow(flow_dir, "dns_debug", CHECKOUT_FLOW.replace("checkout_debug", "dns_debug"))
    flows = load_flows()
    assert flows.source_of("dns_debug") == "builtin"
    assert any("already loaded" in error for error in flows.broken.values())


def test_a_diagnostic_with_only_a_flow_is_valid_and_unknown_flows_are_refused() -> None:
    reply = parse_model_reply(
        '{"flow": "network_debug", "reasoning": "refused connects"}', flow_problem
    )
    assert isinstance(reply, Diagnostic) and reply.flow == "network_debug"
    assert reply.commands == [] and reply.ebpf_programs == []
    with pytest.raises(ReplyError, match="no flow named 'network_debg'; nearest: network_debug"):
        parse_model_reply('{"response_type": "diagnostic", "flow": "network_debg"}', flow_problem)
    # the protocol alone knows no flows (it is a leaf): the backends hand it the check
    assert parse_model_reply('{"response_type": "diagnostic", "flow": "network_debg"}').flow
    with pytest.raises(ReplyError, match="at least one command, eBPF program or flow"):
        parse_model_reply('{"response_type": "diagnostic", "reasoning": "hmm"}')


def test_the_loop_expands_a_flow_into_its_commands_and_probes_once_each() -> None:
    mine = CommandRequest(id="resolv_conf", command="cat /etc/resolv.conf", description="mine")
    extra = CommandRequest(id="hosts_file", command="cat /etc/hosts")
    expanded = expand_flow(Diagnostic(flow="dns_debug", commands=[mine, extra]))
    assert [c.id for c in expanded.commands] == ["resolv_conf", "hosts_file"]
    assert expanded.commands[0].description == "mine"
    assert [(p.type, p.target) for p in expanded.ebpf_programs] == [
        ("catalog", "dns"),
        ("catalog", "tcp_connect"),
    ]


def test_the_model_is_told_which_flows_exist_including_operator_flows(flow_dir: Path) -> None:
    write_flow(flow_dir, "checkout_debug", CHECKOUT_FLOW)
    prompt = local_system_prompt(["web-1"], 6)
    assert "## Flows" in prompt and '"flow": "<name>"' in prompt
    assert "- `network_debug`:" in prompt
    assert "- `checkout_debug`: Checkout service" in prompt
    assert "runs probes tcp_connect; commands checkout_listeners" in prompt


def test_the_offline_planner_runs_the_flows_that_fit_operator_cues_first(flow_dir: Path) -> None:
    write_flow(flow_dir, "checkout_debug", CHECKOUT_FLOW)
    evidence = Evidence(symptom="checkout is flaky since the deploy", step=1, max_steps=6)
    answer = OfflineBackend().ask(ModelRequest(system="", prompt="", evidence=evidence))
    reply = answer.reply
    assert isinstance(reply, Diagnostic)
    assert "checkout_debug" in reply.reasoning and "first_minute" in reply.reasoning
    assert "checkout_connects" in [p.name for p in reply.ebpf_programs]
    assert "checkout_listeners" in [c.id for c in reply.commands]
    assert "uptime" in [c.id for c in reply.commands]


def test_the_offline_planner_picks_each_builtin_flow_for_its_category() -> None:
    cases = {
        "connections refused to the db": "network_debug",
        "name lookups hang": "dns_debug",
        "the box feels sluggish and the CPU is pegged": "cpu_saturation",
        "threads seem deadlocked": "lock_contention",
        "fsync takes forever on the db volume": "disk_latency",
        "java got OOM killed overnight": "memory_pressure",
    }
    for symptom, flow in cases.items():
        evidence = Evidence(symptom=symptom, step=1, max_steps=6)
        reply = OfflineBackend().ask(ModelRequest(system="", prompt="", evidence=evidence)).reply
        assert isinstance(reply, Diagnostic) and f"{flow}" in reply.reasoning, (symptom, reply)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_cli_lists_flows_with_their_source_and_refuses_unknown_ones(flow_dir: Path) -> None:
    write_flow(flow_dir, "checkout_debug", CHECKOUT_FLOW)
    env = {"BPFSLEUTH_FLOW_PATH": str(flow_dir)}
    listed = _cli("flows", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["flows"]}
    assert rows["checkout_debug"]["source"] == str(flow_dir)
    assert rows["network_debug"]["source"] == "builtin"
    assert rows["checkout_debug"]["probes"] == ["tcp_connect"]
    shown = _cli("flows", "show", "checkout_debug", env=env)
    assert json.loads(shown.stdout)["steps"][1]["with"] == {"duration": 2, "sample_limit": 8}
    missing = _cli("flows", "run", "checkout_debg", env=env)
    assert missing.returncode == 2 and "nearest: checkout_debug" in missing.stderr


def test_a_model_asking_for_an_unknown_flow_is_told_the_nearest_and_repairs() -> None:
    from tests.support.fakes.anthropic_api import FakeAnthropic
    from worker.backends.anthropic import AnthropicBackend

    replies = [
        {"reply": {"response_type": "diagnostic", "flow": "network_debg"}},
        {"reply": {"response_type": "diagnostic", "flow": "network_debug"}},
    ]
    evidence = Evidence(symptom="connects refused", step=1, max_steps=6)
    with FakeAnthropic(replies) as fake:
        backend = AnthropicBackend(
            api_key="sk-test", model="claude-test", base_url=fake.url, max_retries=0
        )
        answer = backend.ask(ModelRequest(system="s", prompt="go", evidence=evidence))
        assert fake.violations == []
        repair = json.dumps(fake.requests[1])
    assert answer.repaired and isinstance(answer.reply, Diagnostic)
    assert answer.reply.flow == "network_debug"
    assert "no flow named 'network_debg'; nearest: network_debug" in repair
