"""The Anthropic backend against a local fake of the Messages API, through the real SDK."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.models.conftest import request
from tests.support.fakes.anthropic_api import FakeAnthropic, Status, Text
from tests.support.paths import SEEDS
from worker.backends.anthropic import AnthropicBackend
from worker.backends.base import ModelReplyInvalid, ModelUnavailable, PriorExchange
from worker.backends.factory import build_backend
from worker.protocol import Diagnostic, Resolution, parse_model_reply
from worker.settings import WorkerSettings


def seed(name: str) -> dict:
    return json.loads((SEEDS / name).read_text())


def backend(fake: FakeAnthropic, **kw) -> AnthropicBackend:
    return AnthropicBackend(api_key="sk-test", model="claude-test", base_url=fake.url, **kw)


def test_seed_diagnostic_comes_back_as_a_diagnostic_with_usage_and_cache_fields() -> None:
    with FakeAnthropic([{"reply": seed("06_example_diagnostic.json")}]) as fake:
        answer = backend(fake).ask(request())
    assert fake.violations == []
    assert isinstance(answer.reply, Diagnostic)
    assert [p.target for p in answer.reply.ebpf_programs] == [
        "tcp_connect",
        "syscalls/sys_enter_connect",
    ]
    assert answer.call_id.startswith("toolu_")
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
    assert answer.usage.cache_creation_input_tokens > 0  # first sight of the system prompt
    assert answer.repaired is False


def test_request_forces_the_reply_tool_and_caches_the_system_prompt() -> None:
    with FakeAnthropic([{"reply": seed("07_example_resolution.json")}]) as fake:
        backend(fake).ask(request(system="SYSTEM PROMPT TEXT"))
    body = fake.requests[0]
    assert body["model"] == "claude-test"
    assert body["system"] == [
        {"type": "text", "text": "SYSTEM PROMPT TEXT", "cache_control": {"type": "ephemeral"}}
    ]
    tool = body["tools"][0]
    assert body["tool_choice"]["type"] == "tool" and body["tool_choice"]["name"] == tool["name"]
    assert tool["input_schema"]["type"] == "object"
    assert fake.headers[0]["anthropic-version"]


def test_tool_schema_accepts_the_seed_replies_and_rejects_junk() -> None:
    with FakeAnthropic([{"reply": seed("07_example_resolution.json")}]) as fake:
        backend(fake).ask(request())
    schema = fake.requests[0]["tools"][0]["input_schema"]
    for name in ("06_example_diagnostic.json", "07_example_resolution.json"):
        jsonschema.validate({"reply": seed(name)}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"reply": {"response_type": "resolution", "root_cause": "x"}}, schema)


def test_an_invalid_reply_is_repaired_once_with_the_parser_error() -> None:
    broken = {"reply": {"response_type": "resolution", "root_cause": "disk full"}}
    with FakeAnthropic([broken, {"reply": seed("07_example_resolution.json")}]) as fake:
        answer = backend(fake).ask(request())
    assert fake.violations == []
    assert isinstance(answer.reply, Resolution)
    assert answer.repaired and "confidence" in (answer.repair_error or "")
    repair = fake.requests[1]["messages"][-1]["content"][0]
    assert repair["type"] == "tool_result" and repair["is_error"] is True
    assert "confidence" in repair["content"]
    assert answer.usage.calls == 2
    assert answer.usage.cache_read_input_tokens > 0  # the second call read the cached system


def test_a_reply_still_invalid_after_the_repair_is_an_error_that_keeps_the_usage() -> None:
    broken = {"reply": {"response_type": "diagnostic", "reasoning": "nothing asked"}}
    with FakeAnthropic([broken, broken]) as fake, pytest.raises(ModelReplyInvalid) as info:
        backend(fake).ask(request())
    assert "at least one command" in str(info.value)
    assert info.value.usage.calls == 2 and len(fake.requests) == 2


def test_a_text_reply_without_the_tool_is_parsed_when_it_holds_a_reply() -> None:
    text = "Here you go:\n```json\n" + json.dumps(seed("07_example_resolution.json")) + "\n```"
    with FakeAnthropic([Text(text)]) as fake:
        answer = backend(fake).ask(request())
    assert isinstance(answer.reply, Resolution) and answer.reply.confidence == "High"


def test_history_is_replayed_as_tool_use_and_tool_result_pairs() -> None:
    earlier = parse_model_reply((SEEDS / "06_example_diagnostic.json").read_text())
    history = [
        PriorExchange(prompt="step 1 prompt", reply=earlier, call_id="toolu_abc"),
        PriorExchange(prompt="step 2 prompt", reply=earlier, call_id=""),
    ]
    with FakeAnthropic([{"reply": seed("07_example_resolution.json")}]) as fake:
        backend(fake).ask(request(prompt="step 3 prompt", history=history))
    assert fake.violations == []
    messages = fake.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2 + ["user"]
    assert messages[1]["content"][0]["id"] == "toolu_abc"
    assert messages[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_abc",
        "content": messages[2]["content"][0]["content"],
    }
    assert messages[4]["content"][-1]["text"] == "step 3 prompt"


def test_an_overloaded_api_becomes_model_unavailable_after_the_sdk_retries() -> None:
    overloaded = Status(529, "overloaded_error", "Overloaded")
    with FakeAnthropic([overloaded, overloaded]) as fake, pytest.raises(ModelUnavailable):
        backend(fake, max_retries=1).ask(request())
    assert len(fake.requests) == 2  # one try and one SDK retry


def test_settings_pick_anthropic_with_its_base_url_and_model(monkeypatch) -> None:
    with FakeAnthropic([{"reply": seed("07_example_resolution.json")}]) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("BPFSLEUTH_ANTHROPIC_MODEL", "claude-from-env")
        monkeypatch.setenv("BPFSLEUTH_MODEL", "auto")
        chosen = build_backend(WorkerSettings())
        answer = chosen.ask(request())
    assert chosen.name == "anthropic"
    assert fake.requests[0]["model"] == "claude-from-env"
    assert fake.api_key(0) == "sk-from-env"
    assert isinstance(answer.reply, Resolution)


def test_the_last_step_offers_only_a_resolution() -> None:
    with FakeAnthropic([{"reply": seed("07_example_resolution.json")}]) as fake:
        backend(fake).ask(request(final=True))
    schema = fake.requests[0]["tools"][0]["input_schema"]
    jsonschema.validate({"reply": seed("07_example_resolution.json")}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"reply": seed("06_example_diagnostic.json")}, schema)
