"""The open questions of a handoff: one function (worker.loop.handoff.open_questions) serves the
model's prompt and the bot's template, so both name the same gaps."""

from __future__ import annotations

import random
import string

from bot.chat.handoff import entry_from_investigation
from worker.loop.handoff import handoff_context, open_questions
from worker.loop.investigation import FollowUp, Investigation
from worker.protocol import CommandResult, EbpfResult, PlanResult


def _name(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase, k=6))


def test_every_gap_is_an_open_question_and_both_handoffs_show_the_same_ones() -> None:
    answering, silent, probe = _name("web-"), _name("db-"), _name("probe_")
    command = f"systemctl restart {_name('svc-')}"
    question = f"why only {answering}?"
    inv = Investigation(symptom="s", hosts=[answering, silent])
    inv.results = [
        PlanResult(
            host=answering,
            step=1,
            command_results={
                "c1": CommandResult(id="c1", command=command, verdict="needs_approval")
            },
            ebpf_results={probe: EbpfResult(program_name=probe, error="attach failed")},
        ),
        PlanResult(host=silent, step=1, notes=[f"host {silent} did not answer within 30 s"]),
    ]
    inv.followups = [
        FollowUp(question=question, after_step=1),
        FollowUp(question="answered already", after_step=0, answered=True),
    ]
    questions = open_questions(inv)
    assert any(command in q and answering in q for q in questions)
    assert any(probe in q and "attach failed" in q for q in questions)
    assert any(silent in q and "did not answer" in q for q in questions)
    assert question in questions and "answered already" not in questions
    assert entry_from_investigation(inv).open_questions == questions
    assert handoff_context([inv]).investigations[0].open_questions == questions


def test_a_settled_investigation_has_none_and_a_flood_is_capped() -> None:
    assert open_questions(Investigation(symptom="s", hosts=["h"])) == []
    inv = Investigation(symptom="s", hosts=["h"])
    inv.followups = [FollowUp(question=f"q{i}", after_step=0) for i in range(30)]
    assert len(open_questions(inv)) == 8
