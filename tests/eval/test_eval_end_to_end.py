"""The eval measures what it claims, end to end on real faults with the real loop and probes:
a scenario the offline planner names is scored named with full recall; with Claude played by
the fake Messages API (the real SDK; its diagnostics are the offline planner's), the prompts
sent to the model carry the culprit's facts, and a confident wrong answer is scored wrong."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from bench.eval.catalog import BY_NAME
from bench.eval.runner import run_one
from bench.eval.scoring import totals
from tests.support.fakes.anthropic_api import FakeAnthropic
from worker.backends.anthropic import AnthropicBackend
from worker.backends.base import ModelAnswer, ModelRequest
from worker.backends.offline.planner import OfflineBackend
from worker.protocol import Resolution

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]


class Relay:
    """The Anthropic backend, remembering each request so the fake can answer it."""

    name = "anthropic"

    def __init__(self, inner: AnthropicBackend) -> None:
        self.inner = inner
        self.last: ModelRequest | None = None

    def ask(self, request: ModelRequest) -> ModelAnswer:
        self.last = request
        return self.inner.ask(request)


WRONG = Resolution(
    root_cause="kswapd0 (pid 1) is thrashing: the host is out of memory",
    resolution_plan="1. add memory",
    confidence="High",
    ebpf_evidence="kswapd0 (pid 1) ran 80% of the window",
)


def sent_text(fake: FakeAnthropic) -> str:
    """All text the model received in its last request (every earlier step is replayed)."""
    out = []
    for message in fake.requests[-1]["messages"]:
        content = message["content"]
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            out.append(block.get("text") or str(block.get("content", "")))
    return "\n".join(out)


def test_a_scenario_the_planner_names_is_scored_named_with_full_recall() -> None:
    seed = secrets.randbelow(2**31)
    run = run_one(BY_NAME["connection_refused"], "noise", seed, 0, OfflineBackend())
    detail = f"seed {seed}: {run.model_dump_json(indent=1)}"
    assert run.error == "", detail
    assert run.named and run.correct and run.confidence in {"High", "Medium"}, detail
    assert run.recall == 1.0 and run.iterations >= 2, detail
    assert not run.blamed_noise and len(run.noise["comms"].split()) == 5, detail


def test_fake_claude_is_shown_the_evidence_and_a_confident_wrong_answer_scores_wrong() -> None:
    seed = secrets.randbelow(2**31)
    planner = OfflineBackend()
    relay: Relay

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        assert relay.last is not None
        reply = planner.ask(relay.last).reply
        if isinstance(reply, Resolution):
            reply = WRONG
        return {"reply": reply.model_dump(mode="json")}

    with FakeAnthropic([answer], repeat_last=True) as fake:
        relay = Relay(
            AnthropicBackend(
                api_key="sk-test", model="claude-test", base_url=fake.url, max_retries=0
            )
        )
        run = run_one(BY_NAME["missing_config"], "noise", seed, 0, relay)  # type: ignore[arg-type]
    detail = f"seed {seed}: {run.model_dump_json(indent=1)}"
    assert fake.violations == [] and run.error == "", detail
    assert len(fake.requests) >= 2, detail  # at least one diagnostic, then the answer
    shown = sent_text(fake)
    assert run.drawn["comm"] in shown and run.drawn["path"] in shown, detail
    assert run.recall == 1.0, detail
    assert run.confidence == "High" and not run.correct and not run.named, detail
    assert totals([run])["high_right"] == "0/1"
