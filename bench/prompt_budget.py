"""How big the prompts get, and what one model step costs the loop (without the model).

    .venv/bin/python bench/prompt_budget.py [--runs 30]

- system prompt: characters and estimated tokens (characters / 4) with this host's catalog;
- worst-case step prompt: the most a step may ask for (12 commands printing 64 KiB each, 8 probe
  results with 100 sample events and 50-row top tables), bounded as the loop bounds it;
- decide overhead: `decide_next` against the local fake Messages API through the real SDK
  (render, HTTP round trip, parse, record), p50/p99 over the runs.

Results go to bench/results/prompt_budget.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes.models import Aggregates, TopEntry  # noqa: E402
from tests.support.fakes.anthropic_api import FakeAnthropic  # noqa: E402
from worker.backends.anthropic import AnthropicBackend  # noqa: E402
from worker.loop.bounds import ResultLimits, bound_command, bound_probe  # noqa: E402
from worker.loop.investigation import Investigation, ModelTurnRecord, StepPlan  # noqa: E402
from worker.loop.prompts import render_step  # noqa: E402
from worker.loop.steps import decide_next, record_results, step_context  # noqa: E402
from worker.loop.system_prompt import local_system_prompt  # noqa: E402
from worker.protocol import (  # noqa: E402
    MAX_COMMANDS_PER_STEP,
    MAX_PROGRAMS_PER_STEP,
    CommandResult,
    Diagnostic,
    EbpfResult,
    PlanResult,
)

RESOLUTION = {
    "reply": {
        "response_type": "resolution",
        "root_cause": "bench",
        "resolution_plan": "1. none",
        "confidence": "Low",
    }
}


def worst_case_result() -> PlanResult:
    limits = ResultLimits()
    result = PlanResult(host="bench", step=1)
    for i in range(MAX_COMMANDS_PER_STEP):
        raw = CommandResult(
            id=f"c{i}",
            command=f"cat /var/log/big{i}",
            verdict="allow",
            ran=True,
            exit_code=0,
            stdout="x" * 65536,
            stderr="e" * 4096,
        )
        result.command_results[raw.id] = bound_command(raw, limits, lambda s: s)
    for i in range(MAX_PROGRAMS_PER_STEP):
        raw_probe = EbpfResult(
            program_name=f"p{i}",
            probe="tcp_connect",
            event_count=10**6,
            events=[{"n": n, "path": "/srv/" + "a" * 200} for n in range(100)],
            summary="s" * 2000,
            aggregates=Aggregates(
                totals={"events": 10**6},
                top={"rows": [TopEntry(key="k" * 80, count=n) for n in range(50)]},
            ),
        )
        result.ebpf_results[f"p{i}_1"] = bound_probe(raw_probe, limits, lambda s: s)
    return result


def worst_case_step_prompt() -> str:
    inv = Investigation(symptom="bench", hosts=["bench"])
    inv.turns.append(
        ModelTurnRecord(
            step=1,
            backend="bench",
            prompt="p",
            reply=Diagnostic(commands=[{"id": "c", "command": "true"}]),
        )
    )  # type: ignore[list-item]
    inv.plans.append(StepPlan(investigation_id=inv.id, step=1))
    inv.status = "awaiting_results"
    inv = record_results(inv, 1, [worst_case_result()])
    return render_step(step_context(inv, ""))


def decide_overhead(runs: int, system: str) -> list[float]:
    times = []
    with FakeAnthropic([RESOLUTION], repeat_last=True) as fake:
        backend = AnthropicBackend(api_key="k", model="bench", base_url=fake.url)
        for _ in range(runs):
            inv = Investigation(symptom="bench", hosts=["bench"])
            started = time.perf_counter()
            decide_next(inv, backend, system_prompt=system)
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    system = local_system_prompt(["bench"], 6)
    step = worst_case_step_prompt()
    times_ms = sorted(t * 1000 for t in decide_overhead(args.runs, system))
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "system_prompt": {"chars": len(system), "est_tokens": len(system) // 4},
        "worst_case_step_prompt": {
            "chars": len(step),
            "est_tokens": len(step) // 4,
            "commands": MAX_COMMANDS_PER_STEP,
            "probes": MAX_PROGRAMS_PER_STEP,
        },
        "decide_next_fake_api_ms": {
            "n": len(times_ms),
            "p50": round(statistics.median(times_ms), 2),
            "p99": round(times_ms[min(len(times_ms) - 1, round(0.99 * (len(times_ms) - 1)))], 2),
        },
    }
    out = ROOT / "bench" / "results" / "prompt_budget.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
