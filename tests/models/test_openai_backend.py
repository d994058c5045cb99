"""The OpenAI-compatible backend against a local fake chat completions server (real SDK)."""

from __future__ import annotations

import json

import pytest

from tests.models.conftest import request
from tests.support.fakes.openai_api import FakeOpenAI
from tests.support.paths import SEEDS
from worker.backends.base import ModelReplyInvalid
from worker.backends.openai import OpenAIBackend
from worker.protocol import Diagnostic, Resolution

RESOLUTION = (SEEDS / "07_example_resolution.json").read_text()
DIAGNOSTIC = (SEEDS / "06_example_diagnostic.json").read_text()


def backend(fake: FakeOpenAI) -> OpenAIBackend:
    return OpenAIBackend(
        base_url=fake.base_url, model="tensorzero::function_name::diag", api_key="k", max_retries=0
    )


def test_structured_output_reply_is_parsed_and_uses_the_json_schema() -> None:
    wrapped = json.dumps({"reply": json.loads(DIAGNOSTIC)})
    with FakeOpenAI([wrapped]) as fake:
        answer = backend(fake).ask(request())
    assert fake.violations == []
    assert isinstance(answer.reply, Diagnostic) and len(answer.reply.commands) == 2
    fmt = fake.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["type"] == "object"
    assert fake.requests[0]["messages"][0]["role"] == "system"
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0


def test_a_server_without_structured_output_gets_json_mode_then_text() -> None:
    with FakeOpenAI([RESOLUTION, RESOLUTION], reject={"json_schema", "json_object"}) as fake:
        chosen = backend(fake)
        first = chosen.ask(request())
        second = chosen.ask(request())
    assert fake.rejected == ["json_schema", "json_object"]  # learnt once, remembered
    assert chosen.mode == "text"
    assert "response_format" not in fake.requests[-1]
    assert isinstance(first.reply, Resolution) and isinstance(second.reply, Resolution)


def test_prose_around_the_json_is_tolerated_in_text_mode() -> None:
    prose = f"Looking at the evidence:\n```json\n{RESOLUTION}\n```\nHope this helps."
    with FakeOpenAI([prose], reject={"json_schema", "json_object"}) as fake:
        answer = backend(fake).ask(request())
    assert isinstance(answer.reply, Resolution)


def test_an_invalid_reply_is_repaired_once() -> None:
    with FakeOpenAI(['{"response_type": "resolution", "root_cause": "x"}', RESOLUTION]) as fake:
        answer = backend(fake).ask(request())
    assert answer.repaired and isinstance(answer.reply, Resolution)
    repair = fake.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-1]["role"] == "user"
    assert "resolution_plan" in repair[-1]["content"]


def test_two_invalid_replies_are_an_error() -> None:
    with FakeOpenAI(["no json here", "still none"]) as fake, pytest.raises(ModelReplyInvalid):
        backend(fake).ask(request())
