"""The loop with an OpenAI-compatible gateway (a local fake) that lacks structured outputs."""

from __future__ import annotations

import json

from tests.support.fakes.openai_api import FakeOpenAI
from worker.backends.openai import OpenAIBackend
from worker.loop.run import run_investigation


def test_an_investigation_through_a_json_mode_gateway() -> None:
    diagnostic = json.dumps(
        {
            "response_type": "diagnostic",
            "reasoning": "load first",
            "commands": [{"id": "load", "command": "cat /proc/loadavg"}],
        }
    )
    resolution = json.dumps(
        {
            "response_type": "resolution",
            "root_cause": "load is normal",
            "resolution_plan": "1. nothing to do",
            "confidence": "Low",
        }
    )
    with FakeOpenAI([diagnostic, resolution], reject={"json_schema"}) as fake:
        backend = OpenAIBackend(base_url=fake.base_url, model="ollama/llama", max_retries=0)
        inv = run_investigation("load?", ["h"], backend, system_prompt="Reply in JSON.")
    assert fake.violations == [] and fake.rejected == ["json_schema"]
    assert inv.resolution is not None and inv.resolution.root_cause == "load is normal"
    second = fake.requests[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert json.loads(second[2]["content"])["commands"][0]["command"] == "cat /proc/loadavg"
    ran = inv.results[0].command_results["load"]
    assert ran.ran and ran.exit_code == 0
    assert ran.stdout.strip() in second[3]["content"]  # the real output reached the model
