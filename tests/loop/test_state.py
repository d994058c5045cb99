"""The loop's pure parts: repeats, bounds, recording results, synthesised resolutions."""

from __future__ import annotations

import json

from probes.models import Aggregates, HistogramBucket, LatencyStats, TopEntry
from tests.support.paths import SEEDS
from worker.backends.base import TokenUsage
from worker.loop.bounds import ResultLimits, bound_command, bound_probe, compact_json, cut
from worker.loop.investigation import Budgets, Investigation, ModelTurnRecord, StepPlan
from worker.loop.repeat_guard import guard_repeats
from worker.loop.steps import final_step_reason, fit_to_wall_time, record_results, step_context
from worker.loop.synthesis import synthesise_resolution
from worker.protocol import (
    CommandResult,
    Diagnostic,
    EbpfResult,
    PlanResult,
    parse_model_reply,
)


def seed_diagnostic() -> Diagnostic:
    reply = parse_model_reply((SEEDS / "06_example_diagnostic.json").read_text())
    assert isinstance(reply, Diagnostic)
    return reply


def awaiting(inv: Investigation, step: int) -> Investigation:
    inv.turns.append(
        ModelTurnRecord(step=step, backend="test", prompt="p", reply=seed_diagnostic())
    )
    inv.plans.append(StepPlan(investigation_id=inv.id, step=step))
    inv.status = "awaiting_results"
    return inv


def test_identical_requests_are_not_planned_again_but_new_ones_are() -> None:
    first = guard_repeats(seed_diagnostic(), [], StepPlan(investigation_id="i", step=1))
    again = seed_diagnostic().model_copy(deep=True)
    again.commands[0].id = "renamed"  # same command, other id: still a repeat
    again.commands[1].command = "nslookup   db.example.com"  # spacing aside: a repeat
    again.ebpf_programs[0].duration = 5  # another duration: a new request
    second = guard_repeats(again, [first], StepPlan(investigation_id="i", step=2))
    assert second.commands == []
    assert [p.name for p in second.ebpf_programs] == ["tcp_connect_db"]
    assert {(r.kind, r.id, r.first_step) for r in second.repeats} == {
        ("command", "renamed", 1),
        ("command", "dns_check", 1),
        ("ebpf_program", "dns_queries", 1),
    }


def test_cut_keeps_head_and_tail_and_says_how_much_went() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out, was_cut = cut(text, 500)
    assert was_cut and len(out) <= 500
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "characters cut" in out
    assert cut("short", 500) == ("short", False)


def test_command_output_is_redacted_then_bounded() -> None:
    result = CommandResult(
        id="env",
        command="env",
        verdict="allow",
        ran=True,
        exit_code=0,
        stdout="TOKEN=abc123\n" + "line\n" * 5000,
    )
    bounded = bound_command(
        result, ResultLimits(stdout_chars=300), lambda s: s.replace("abc123", "[REDACTED]")
    )
    assert "abc123" not in bounded.stdout and "[REDACTED]" in bounded.stdout
    assert len(bounded.stdout) <= 300 and bounded.truncated


def test_a_huge_probe_result_is_trimmed_to_a_few_hundred_tokens() -> None:
    big = EbpfResult(
        program_name="p",
        probe="tcp_connect",
        event_count=10**6,
        events=[{"i": i, "path": "/x" * 300} for i in range(100)],
        summary="s" * 5000,
        aggregates=Aggregates(
            totals={"attempts": 10**6},
            top={"failures": [TopEntry(key=f"k{i}" * 20, count=i) for i in range(50)]},
            latency={
                "connect": LatencyStats(
                    count=5,
                    histogram=[
                        HistogramBucket(low=2**i, high=2 ** (i + 1), count=i) for i in range(40)
                    ],
                )
            },
        ),
    )
    limits = ResultLimits()
    bounded = bound_probe(big, limits, lambda s: s)
    assert len(compact_json(bounded)) <= limits.probe_json_chars
    assert bounded.event_count == 10**6  # counts survive; only samples and detail go
    assert bounded.aggregates.totals == {"attempts": 10**6}


def test_record_results_closes_the_step_once_and_names_silent_hosts() -> None:
    inv = awaiting(Investigation(symptom="s", hosts=["web-1", "web-2"]), 1)
    web1 = PlanResult(host="web-1", step=1, notes=["ok"])
    inv = record_results(inv, 1, [web1])
    assert inv.status == "deciding"
    by_host = {r.host: r for r in inv.results}
    assert by_host["web-1"].notes == ["ok"]
    assert "sent no result" in by_host["web-2"].notes[0]
    again = record_results(inv, 1, [web1])  # a redelivered result changes nothing
    assert len(again.results) == 2


def test_the_last_step_and_spent_budgets_demand_a_final_answer() -> None:
    inv = Investigation(symptom="s", hosts=["h"], budgets=Budgets(max_iterations=2))
    assert final_step_reason(inv) == ""
    inv.turns.append(
        ModelTurnRecord(step=1, backend="t", prompt="p", usage=TokenUsage(input_tokens=10))
    )
    assert "step 2 of at most 2" in final_step_reason(inv)
    inv = Investigation(symptom="s", hosts=["h"], budgets=Budgets(max_model_tokens=100))
    inv.turns.append(
        ModelTurnRecord(step=1, backend="t", prompt="p", usage=TokenUsage(input_tokens=60))
    )
    assert "token budget" in final_step_reason(inv)


def test_results_lost_with_a_failed_turn_are_shown_again() -> None:
    inv = awaiting(Investigation(symptom="s", hosts=["h"]), 1)
    inv = record_results(inv, 1, [PlanResult(host="h", step=1, notes=["evidence"])])
    inv.turns.append(ModelTurnRecord(step=2, backend="t", prompt="p", error="bad reply"))
    context = step_context(inv, "")
    assert [r.notes for r in context.results] == [["evidence"]]
    assert context.previous_error == "bad reply"


def test_synthesised_resolution_is_low_and_lists_evidence_and_what_is_missing() -> None:
    inv = awaiting(Investigation(symptom="s", hosts=["h"]), 1)
    probe = EbpfResult(
        program_name="c", probe="tcp_connect", summary="12 connects: 9 refused to 10.0.0.5:5432"
    )
    inv = record_results(inv, 1, [PlanResult(host="h", step=1, ebpf_results={"c_1": probe})])
    inv.turns.append(ModelTurnRecord(step=2, backend="t", prompt="p", reply=seed_diagnostic()))
    resolution = synthesise_resolution(inv, "the step budget ran out")
    assert resolution.confidence == "Low"
    assert "the step budget ran out" in resolution.root_cause
    assert "9 refused to 10.0.0.5:5432" in resolution.ebpf_evidence
    assert "nslookup db.example.com" in resolution.resolution_plan
    assert json.loads(resolution.model_dump_json())["confidence"] == "Low"


def test_probe_durations_are_cut_to_the_wall_time_left() -> None:
    inv = Investigation(symptom="s", hosts=["h"], budgets=Budgets(max_wall_s=12))
    plan = guard_repeats(seed_diagnostic(), [], StepPlan(investigation_id=inv.id, step=1))
    assert [p.duration for p in plan.ebpf_programs] == [20, 20]
    fitted = fit_to_wall_time(plan, inv)
    assert all(6 <= p.duration <= 7 for p in fitted.ebpf_programs)


def test_a_refusal_keeps_its_nearest_probes_through_the_bounds() -> None:
    error = (
        "refused: no catalog probe answers kprobe:x, " + "because " * 30 + "nearest probes: a, b"
    )
    bounded = bound_probe(EbpfResult(program_name="x", error=error), ResultLimits(), lambda s: s)
    assert bounded.error == error
