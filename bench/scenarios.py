"""Incident scenarios, timed: each real fault (tests/support/workloads/scenarios.py) investigated
by the offline planner with real probes; prints scenario, pass, iterations, wall time, confidence
and writes bench/results/scenarios.json.
Run as root: `.venv/bin/python bench/scenarios.py [name...]`.

The offline planner uses no model tokens (prompt tokens per step are recorded as 0); the model
backends' prompt sizes are measured by bench/prompt_budget.py.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.workloads.scenarios import BY_NAME, SCENARIOS, ScenarioOutcome, run_scenario  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scenarios.json"


def main(names: list[str]) -> int:
    chosen = [BY_NAME[n] for n in names] if names else SCENARIOS
    outcomes: list[ScenarioOutcome] = []
    print(f"{'scenario':<20} {'pass':<5} {'iterations':>10} {'wall s':>8}  confidence")
    for scenario in chosen:
        outcome = run_scenario(scenario)
        outcomes.append(outcome)
        print(
            f"{outcome.scenario:<20} {'yes' if outcome.passed else 'NO':<5} "
            f"{outcome.iterations:>10} {outcome.wall_s:>8.1f}  {outcome.confidence}",
            flush=True,
        )
        if not outcome.passed:
            print(f"    missing in root cause: {outcome.missing_in_root_cause}")
            print(f"    missing in evidence:   {outcome.missing_in_evidence}")
            print(f"    root cause: {outcome.root_cause[:400]}")
    passed = sum(o.passed for o in outcomes)
    summary = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": "offline",
        "pass_rate": round(passed / len(outcomes), 3),
        "median_iterations": statistics.median(o.iterations for o in outcomes),
        "median_wall_s": round(statistics.median(o.wall_s for o in outcomes), 2),
        "note": "offline planner: no model tokens (prompt_tokens_per_step are 0)",
        "scenarios": [o.model_dump() for o in outcomes],
    }
    print(
        f"pass rate {passed}/{len(outcomes)}, median iterations {summary['median_iterations']}, "
        f"median wall {summary['median_wall_s']} s"
    )
    if not names:
        RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
