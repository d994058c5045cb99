"""The eval harness's own rules, without starting anything: the suite's size and spread, seeded
draws that replay and vary, phrasings that do not give the answer away, and scoring that tells
a right answer from a wrong, a confident one from a hedge, and noise from the culprit."""

from __future__ import annotations

import re
import string
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from bench.eval.catalog import FAULTS
from bench.eval.draw import Draw
from bench.eval.scoring import RunScore, score, totals
from bench.eval.timing import StepTiming, step_timings
from tests.support.paths import BPFSLEUTH
from tests.support.workloads.scenarios import Truth
from worker.loop.investigation import Investigation, ModelTurnRecord
from worker.protocol import CommandResult, EbpfResult, PlanResult, Resolution

AREAS = {"network", "dns", "files", "filesystems", "processes", "cpu", "memory", "locks", "io"}
CLASSIC = {
    "connection_refused",
    "missing_config",
    "cpu_starvation",
    "lock_contention",
    "exec_storm",
    "dns_timeouts",
    "oom_kill",
}
# Words that would name the fault instead of describing what people see.
GIVEAWAYS = re.compile(
    r"enospc|eacces|emfile|econnreset|erofs|eaddrinuse|enomem|eagain|epipe|nxdomain|sigsegv|"
    r"segfault|fsync|zombie|flock|oom|rlimit|ulimit|file descriptor|read-only|permission|"
    r"disk full|no space|address in use|mutex|fork",
    re.IGNORECASE,
)


def test_the_suite_has_at_least_25_faults_across_every_area_and_keeps_the_seven() -> None:
    names = [f.name for f in FAULTS]
    assert len(names) >= 25 and len(set(names)) == len(names)
    assert {f.area for f in FAULTS} == AREAS
    assert set(names) >= CLASSIC


@pytest.mark.parametrize("spec", FAULTS, ids=[f.name for f in FAULTS])
def test_each_fault_has_several_phrasings_that_do_not_give_it_away(spec) -> None:
    assert len(spec.phrasings) >= 3
    for phrasing in spec.phrasings:
        fields = {f for _, f, _, _ in string.Formatter().parse(phrasing) if f}
        assert fields <= {"svc", "peer"}, phrasing
        assert not GIVEAWAYS.search(phrasing), phrasing
        assert spec.name.replace("_", " ") not in phrasing.lower()


def test_a_seed_replays_and_another_seed_draws_other_values() -> None:
    def sample(seed: int, label: str) -> list[object]:
        d = Draw(seed, label)
        return [d.service(), d.service(), d.token(6), d.loopback(), d.uniform(0, 1), d.uid()]

    assert sample(5, "disk_full:quiet:0") == sample(5, "disk_full:quiet:0")
    assert sample(5, "disk_full:quiet:0") != sample(6, "disk_full:quiet:0")
    assert sample(5, "disk_full:quiet:0") != sample(5, "disk_full:noise:0")
    names = {Draw(seed, "x").service()[0] for seed in range(40)}
    assert len(names) > 20  # names vary run to run, not a handful of fixed ones


def test_names_in_one_run_never_repeat_and_fit_a_comm() -> None:
    d = Draw(11, "many")
    drawn = [d.service() for _ in range(12)]
    comms, words = [c for c, _ in drawn], [w for _, w in drawn]
    assert len(set(comms)) == 12 and len(set(words)) == 12  # a symptom's word names one process
    assert all(len(c) <= 15 and c.startswith(w) for c, w in drawn)
    assert 20000 <= d.free_port() <= 60999


def investigation(
    root_cause: str, evidence: str, confidence: str, prompts: list[str]
) -> Investigation:
    inv = Investigation(symptom="checkout keeps erroring out", hosts=["h"])
    inv.turns = [
        ModelTurnRecord(step=i + 1, backend="test", prompt=p) for i, p in enumerate(prompts)
    ]
    inv.resolution = Resolution(
        root_cause=root_cause,
        resolution_plan="1. fix",
        confidence=confidence,  # type: ignore[arg-type]
        ebpf_evidence=evidence,
    )
    inv.status = "resolved"
    return inv


TRUTH = Truth((("ledger-gw",), ("pid 4321",), ("127.0.0.1:41234",)))
FACTS = Truth((("ledger-gw",), ("127.0.0.1:41234",)))
SHOWN = ["step 1: symptom only", "connect ECONNREFUSED ledger-gw pid 4321 -> 127.0.0.1:41234 x80"]


def test_a_right_confident_answer_is_named_with_full_recall() -> None:
    text = "ledger-gw (pid 4321) gets ECONNREFUSED from 127.0.0.1:41234"
    judged = score(investigation(text, text, "High", SHOWN), TRUTH, FACTS)
    assert judged["named"] and judged["correct"] and judged["recall"] == 1.0


def test_a_wrong_answer_is_wrong_even_when_confident_and_noise_is_flagged() -> None:
    text = "ledger-gwx (pid 43210) keeps failing to open /opt/x.conf; blame opt-agent"
    judged = score(
        investigation(text, text, "High", SHOWN), TRUTH, FACTS, noise_comms=["opt-agent", "zz"]
    )
    assert not judged["named"] and not judged["correct"]
    assert judged["blamed_noise"]
    assert judged["missing_in_root_cause"] == [list(g) for g in TRUTH.groups]


def test_the_culprit_only_in_the_root_cause_or_said_with_low_confidence_is_not_named() -> None:
    text = "ledger-gw (pid 4321) gets ECONNREFUSED from 127.0.0.1:41234"
    only_rc = score(investigation(text, "connects fail", "High", SHOWN), TRUTH, FACTS)
    assert not only_rc["correct"] and only_rc["missing_in_evidence"]
    low = score(investigation(text, text, "Low", SHOWN), TRUTH, FACTS)
    assert low["correct"] and not low["named"]


def test_recall_counts_the_facts_in_what_the_model_was_shown_not_in_the_answer() -> None:
    text = "ledger-gw (pid 4321) gets ECONNREFUSED from 127.0.0.1:41234"
    blind = score(investigation(text, text, "High", ["nothing about it"]), TRUTH, FACTS)
    assert blind["recall"] == 0.0 and blind["facts_missing"] == [list(g) for g in FACTS.groups]
    half = score(investigation(text, text, "High", ["ledger-gw retried"]), TRUTH, FACTS)
    assert half["recall"] == 0.5


def run(mode: str, named: bool, correct: bool, confidence: str, wall: float) -> RunScore:
    return RunScore(
        scenario="s", area="a", mode=mode, seed=1, symptom="x", named=named, correct=correct,
        confidence=confidence, recall=1.0, iterations=3, wall_s=wall,
    )  # fmt: skip


def test_totals_give_the_rates_and_the_calibration() -> None:
    runs = [
        run("quiet", True, True, "High", 4.0),
        run("quiet", False, False, "High", 6.0),
        run("noise", True, True, "Medium", 8.0),
        run("noise", False, True, "Low", 10.0),
    ]
    t = totals(runs)
    assert t["named_quiet"] == "1/2" and t["named_noise"] == "1/2"
    assert t["high_right"] == "1/2" and t["high_right_rate"] == 0.5
    assert t["medium_right"] == "1/1" and t["low"] == 1
    assert t["median_wall_s"] == 7.0 and t["evidence_recall"] == 1.0


def test_bpfsleuth_eval_runs_the_eval_from_the_source_tree() -> None:
    cli = BPFSLEUTH
    done = subprocess.run([cli, "eval", "--list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == [f.name for f in FAULTS]
    bad = subprocess.run([cli, "eval", "--only", "no_such_fault"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_step_timings_split_a_step_into_model_commands_compile_window_and_the_rest() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    inv = investigation("x", "x", "High", ["step 1", "step 2"])
    inv.turns[0].started_at, inv.turns[0].finished_at = t0, t0 + timedelta(seconds=0.25)
    inv.turns[1].started_at, inv.turns[1].finished_at = t0, t0 + timedelta(seconds=0.5)
    inv.results = [
        PlanResult(
            host="h",
            step=1,
            started_at=t0,
            finished_at=t0 + timedelta(seconds=6),
            command_results={
                "a": CommandResult(id="a", command="uptime", verdict="allow", duration_s=0.5),
                "b": CommandResult(id="b", command="date", verdict="allow", duration_s=1.0),
            },
            ebpf_results={
                "p_1": EbpfResult(program_name="p", compile_s=0.0, duration_s=3.0),
                "q_1": EbpfResult(program_name="q", compile_s=1.2, duration_s=2.0),
                "r_1": EbpfResult(program_name="r", compile_s=9.0, error="refused"),
            },
        )
    ]
    first, second = step_timings(inv)
    assert first == StepTiming(
        step=1, model_s=0.25, run_s=6.0, commands_s=1.5, longest_command_s=1.0, probes=3,
        compile_s=1.2, window_s=3.0, other_s=0.8,
    )  # fmt: skip
    assert second == StepTiming(step=2, model_s=0.5)  # the resolution: no plan ran
