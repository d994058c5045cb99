"""The JSON protocol: every seed example parses, anything else gets a short, precise error."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.support.paths import SEEDS
from worker.protocol import (
    Diagnostic,
    PlanResult,
    ReplyError,
    Resolution,
    parse_model_object,
    parse_model_reply,
    protocol_json_schema,
    reply_json_schema,
)

MODEL_REPLY_EXAMPLES = {
    "00_before_commands_only.json": Diagnostic,
    "01_after_ebpf_enhanced.json": Diagnostic,
    "04_dataflow_request_fragment.json": Diagnostic,
    "06_example_diagnostic.json": Diagnostic,
    "07_example_resolution.json": Resolution,
}


@pytest.mark.parametrize("name", sorted(MODEL_REPLY_EXAMPLES))
def test_every_seed_example_parses(name: str) -> None:
    reply = parse_model_reply((SEEDS / name).read_text())
    assert isinstance(reply, MODEL_REPLY_EXAMPLES[name])


def test_seed_diagnostic_fields_survive() -> None:
    reply = parse_model_reply((SEEDS / "06_example_diagnostic.json").read_text())
    assert isinstance(reply, Diagnostic)
    assert [c.command for c in reply.commands] == [
        "ss -tlnp | grep :5432",
        "nslookup db.example.com",
    ]
    connect, dns = reply.ebpf_programs
    assert (connect.type, connect.target, connect.duration) == ("kprobe", "tcp_connect", 20)
    assert connect.filters.comm == "myapp"
    assert (dns.type, dns.target) == ("tracepoint", "syscalls/sys_enter_connect")


def test_seed_resolution_fields_survive() -> None:
    reply = parse_model_reply((SEEDS / "07_example_resolution.json").read_text())
    assert isinstance(reply, Resolution)
    assert reply.confidence == "High"
    assert "10.0.1.50:5432" in reply.ebpf_evidence


def test_seed_ebpf_results_are_a_plan_result() -> None:
    data = json.loads((SEEDS / "05_dataflow_ebpf_results.json").read_text())
    result = PlanResult.model_validate(data)
    seen = result.ebpf_results["tcp_monitor_1695902400"]
    assert seen.event_count == 42
    assert seen.events[0]["process_name"] == "curl"


def test_format_templates_are_rejected_with_the_position() -> None:
    # The seed's format descriptions ("duration": 10-30, [...]) are not valid JSON.
    with pytest.raises(ReplyError, match=r"invalid JSON at line \d+ column \d+"):
        parse_model_reply((SEEDS / "02_template_diagnostic.json").read_text())
    with pytest.raises(ReplyError, match="confidence"):
        parse_model_reply((SEEDS / "03_template_resolution.json").read_text())


RESOLUTION = (
    '{"response_type": "resolution", "root_cause": "port 5432 closed", '
    '"resolution_plan": "start postgres", "confidence": "medium", "ebpf_evidence": "12 refused"}'
)


@pytest.mark.parametrize(
    "text",
    [
        RESOLUTION,
        f"```json\n{RESOLUTION}\n```",
        f"Here is my conclusion:\n```\n{RESOLUTION}\n```\nLet me know.",
        f"After reading the results, {RESOLUTION} -- that is all.",
    ],
)
def test_fences_and_prose_around_one_object_are_tolerated(text: str) -> None:
    reply = parse_model_reply(text)
    assert isinstance(reply, Resolution)
    assert reply.confidence == "Medium"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty reply"),
        ("I think it's DNS.", "no JSON object found"),
        (f"{RESOLUTION}\n{RESOLUTION}", "found 2 JSON objects"),
        ('{"response_type": "diagnostic", "commands": [}', "invalid JSON at line 1 column"),
        ('{"response_type": "plan", "commands": []}', "response_type must be"),
        ('{"reasoning": "hmm"}', "missing response_type"),
        ('{"response_type": "diagnostic", "reasoning": "x"}', "at least one command"),
        (
            '{"response_type": "diagnostic", "commands": [{"id": "a", "command": "uptime"},'
            ' {"id": "a", "command": "free"}]}',
            "command id 'a' is used twice",
        ),
        (
            '{"response_type": "diagnostic", "ebpf_programs": [{"name": "t", "type": "kprobe",'
            ' "target": "tcp_connect", "duration": 3600}]}',
            "ebpf_programs[0].duration: Input should be less than or equal to 60",
        ),
        (
            '{"response_type": "diagnostic", "ebpf_programs": [{"name": "t", "type": "kprobe",'
            ' "target": "tcp_connect", "duration": 0}]}',
            "ebpf_programs[0].duration: Input should be greater than or equal to 1",
        ),
        (
            '{"response_type": "diagnostic", "ebpf_programs": [{"name": "t", "type": "fentry",'
            ' "target": "tcp_connect", "duration": 5}]}',
            "ebpf_programs[0].type",
        ),
        (
            '{"response_type": "diagnostic", "ebpf_programs": [{"name": "t", "type": "kprobe",'
            ' "target": "tcp_connect", "duration": 5, "filters": {"pid": -1}}]}',
            "ebpf_programs[0].filters.pid",
        ),
        (
            '{"response_type": "diagnostic", "ebpf_programs": [{"name": "t", "type": "kprobe",'
            ' "target": "tcp_connect", "duration": 5, "filters": {"comm": "' + "x" * 100 + '"}}]}',
            "comm is 100 characters; a Linux comm is at most 15",
        ),
        ('{"response_type": "resolution", "root_cause": "x"}', "resolution_plan: Field required"),
    ],
)
def test_bad_replies_get_a_precise_short_error(text: str, expected: str) -> None:
    with pytest.raises(ReplyError) as caught:
        parse_model_reply(text)
    message = str(caught.value)
    assert expected in message
    assert len(message) < 400, "the error is sent back to the model: keep it short"


def test_tool_input_objects_are_validated_the_same_way() -> None:
    reply = parse_model_object(json.loads(RESOLUTION))
    assert isinstance(reply, Resolution)
    with pytest.raises(ReplyError, match="expected a JSON object"):
        parse_model_object(["not", "an", "object"])


def test_json_schema_is_valid_and_accepts_the_seed_examples() -> None:
    schema = reply_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in (
        "00_before_commands_only.json",
        "06_example_diagnostic.json",
        "07_example_resolution.json",
    ):
        validator.validate(json.loads((SEEDS / name).read_text()))
    whole = protocol_json_schema()
    assert set(whole) >= {"model_reply", "plan_result"}
