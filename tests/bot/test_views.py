"""Views are pure functions from models to Block Kit: Slack's limits, escaping, truncation."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.views.approval import APPROVE_ACTION, DENY_ACTION, ApprovalKey, approval_message
from bot.views.blocks import MAX_BLOCKS, SlackMessage, finish, section, sections_from_lines
from bot.views.handoff import handoff_message
from bot.views.help import help_message
from bot.views.hosts import hosts_message
from bot.views.investigation import root_message
from bot.views.models import (
    ApprovalView,
    CommandRow,
    HandoffEntry,
    HandoffView,
    InvestigationHeader,
    ProbeRow,
    ResolutionView,
    StepView,
)
from bot.views.mrkdwn import code_block, escape, fit, inline_code
from bot.views.resolution import DIG_DEEPER_ACTION, HANDOFF_ACTION, plan_steps, resolution_message
from bot.views.step import step_message
from tests.support.fakes.slack_api import block_violations
from worker.distributed.registry import HostRow

HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|click> a & b > c `x` ```fence```"


def _dicts(message: SlackMessage) -> list[dict[str, Any]]:
    return message.block_dicts()


def _texts(message: SlackMessage) -> list[str]:
    """Every mrkdwn/plain text string in the blocks."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in {"mrkdwn", "plain_text"} and "text" in node:
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_dicts(message))
    return out


def assert_within_slack_limits(message: SlackMessage) -> None:
    payload = {"text": message.text, "blocks": _dicts(message)}
    assert block_violations("chat.postMessage", payload) == []
    assert 0 < len(message.text) <= 3000
    assert len(payload["blocks"]) <= MAX_BLOCKS
    json.dumps(payload)  # serialisable as sent


def assert_no_raw_control(message: SlackMessage, allowed: tuple[str, ...] = ()) -> None:
    """No unescaped `<`/`>` except the mentions we add ourselves."""
    for text in _texts(message):
        for token in allowed:
            text = text.replace(token, "")
        assert "<" not in text and ">" not in text.replace("> ", ""), text


# -- mrkdwn helpers -------------------------------------------------------------------------


def test_escape_replaces_the_three_control_characters() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert escape("<!channel>") == "&lt;!channel&gt;"


def test_fit_cuts_long_text_without_splitting_an_entity() -> None:
    text = escape("&" * 5000)
    for limit in range(10, 60):
        cut = fit(text, limit)
        assert len(cut) <= limit
        assert cut.endswith("…")
        body = cut.removesuffix("…")
        assert body.replace("&amp;", "") == "", body


def test_fit_leaves_short_text_alone() -> None:
    assert fit("short", 10) == "short"


def test_code_block_fits_and_cannot_be_closed_early_by_its_content() -> None:
    block = code_block("before ``` after\n" * 1000, 2000)
    assert len(block) <= 2000
    assert block.startswith("```\n") and block.endswith("\n```")
    assert block.count("```") == 2
    assert "(cut)" in block


def test_inline_code_is_one_line_and_escaped() -> None:
    code = inline_code("grep `x`\n<y> && z", 100)
    assert "\n" not in code and code.count("`") == 2
    assert "&lt;y&gt; &amp;&amp; z" in code


def test_sections_from_lines_pack_within_the_section_limit() -> None:
    lines = [f"line {i} " + "x" * 290 for i in range(100)]
    sections = sections_from_lines(lines)
    texts = [s.to_dict()["text"]["text"] for s in sections]
    assert all(len(t) <= 3000 for t in texts)
    assert "\n".join(texts).count("line ") == 100
    assert len(sections) < 100


def test_finish_caps_blocks_at_fifty_and_says_so() -> None:
    message = finish("many", [section(f"s{i}") for i in range(80)])
    assert len(message.blocks) == MAX_BLOCKS
    last = message.block_dicts()[-1]
    assert last["type"] == "context" and "31 more blocks" in last["elements"][0]["text"]


def test_finish_always_sets_a_fallback_text() -> None:
    assert finish("   ", [section("x")]).text == "bpfsleuth"
    assert len(finish("y" * 10_000, []).text) <= 3000


# -- help, hosts, root ----------------------------------------------------------------------


def test_help_lists_every_form_of_the_command() -> None:
    message = help_message()
    text = "\n".join(_texts(message))
    for form in ("/diagnose [host,host] <symptom>", "/diagnose hosts", "/diagnose handoff"):
        assert form in text
    assert_within_slack_limits(message)


def test_hosts_lists_capabilities_and_stays_within_limits_for_many_hosts() -> None:
    hosts = [
        HostRow(
            name=f"web-{i:03d}",
            heartbeat_age_s=2,
            kernel="6.18.0",
            arch="x86_64",
            program_types=["tracepoint", "uprobe"],
            missing_program_types=["kprobe"],
            tracepoints=2000,
            bcc="0.26",
            headers="exact",
            pid=1000 + i,
        )
        for i in range(500)
    ]
    message = hosts_message(hosts)
    assert_within_slack_limits(message)
    text = "\n".join(_texts(message))
    assert "web-000" in text and "tracepoint, uprobe" in text and "no kprobe" in text
    assert "Live hosts (500)" in text


def test_hosts_says_how_to_get_hosts_when_there_are_none() -> None:
    text = "\n".join(_texts(hosts_message([])))
    assert "No live hosts" in text and "bpfsleuth worker" in text


def test_root_message_escapes_the_symptom_but_keeps_the_requester_mention() -> None:
    message = root_message(
        InvestigationHeader(
            investigation_id="abc", symptom=HOSTILE, hosts=["web-1"], requested_by="U0ALICE"
        )
    )
    assert_within_slack_limits(message)
    assert_no_raw_control(message, allowed=("<@U0ALICE>",))
    assert "<@U0ALICE>" in "\n".join(_texts(message))


# -- step -----------------------------------------------------------------------------------


def _busy_step() -> StepView:
    return StepView(
        investigation_id="abc",
        step=3,
        reasoning=HOSTILE * 100,
        commands=[
            CommandRow(
                id=f"c{i}",
                command=f"cat /proc/{i}/status " + "y" * 3000,
                host=f"web-{i}",
                verdict="allow",
                ran=True,
                exit_code=0,
                duration_s=0.1,
            )
            for i in range(12)
        ],
        probes=[
            ProbeRow(
                name=f"p{i}",
                requested="kprobe:tcp_connect",
                probe="tcp_connect",
                host="web-1",
                attach_points=["sock:inet_sock_set_state"],
                duration_s=5,
                finished=True,
                event_count=10,
                summary=HOSTILE * 50,
            )
            for i in range(8)
        ],
        findings=[HOSTILE] * 200,
        notices=["n" * 5000] * 20,
        outputs="out\n" * 5000,
        outputs_file="Step 3 outputs",
    )


def test_a_full_step_stays_within_slack_limits() -> None:
    message = step_message(_busy_step())
    assert_within_slack_limits(message)
    assert_no_raw_control(message)


def test_step_shows_each_command_with_its_verdict_and_result() -> None:
    view = StepView(
        investigation_id="abc",
        step=1,
        reasoning="check the database port",
        commands=[
            CommandRow(
                id="a", command="ss -tlnp", host="web-1", verdict="allow", ran=True, exit_code=0
            ),
            CommandRow(
                id="b",
                command="rm -rf /",
                host="web-1",
                verdict="deny",
                ran=False,
                reason="writes",
                note="denied by policy",
            ),
            CommandRow(id="c", command="tcpdump -c 10", host="web-1", verdict="needs_approval"),
            CommandRow(id="d", command="uptime"),
        ],
    )
    text = "\n".join(_texts(step_message(view)))
    assert "check the database port" in text
    assert "`ss -tlnp` on *web-1* — allowed; exit 0" in text
    assert "`rm -rf /`" in text and "denied (writes)" in text and "not run" in text
    assert "`tcpdump -c 10`" in text and "waiting for approval" in text
    assert "`uptime` — planned" in text


def test_step_shows_a_probe_with_attach_point_host_duration_and_countdown() -> None:
    view = StepView(
        investigation_id="abc",
        step=1,
        probes=[
            ProbeRow(
                name="conn",
                requested="kprobe:tcp_connect",
                probe="tcp_connect",
                host="web-1",
                attach_points=["sock:inet_sock_set_state"],
                duration_s=5,
                ends_at=1000.0,
            )
        ],
    )
    text = "\n".join(_texts(step_message(view, now=997.0)))
    assert "*tcp_connect*" in text and "asked `kprobe:tcp_connect`" in text
    assert "on *web-1*" in text and "`sock:inet_sock_set_state`" in text
    assert "5.0s" in text and "3s left" in text


def test_a_refused_probe_says_why() -> None:
    view = StepView(
        investigation_id="abc",
        step=1,
        probes=[ProbeRow(name="x", requested="kprobe:foo", refused=True, error="no such probe")],
    )
    assert "refused: no such probe" in "\n".join(_texts(step_message(view)))


def test_short_outputs_show_inline_and_long_ones_point_to_the_file() -> None:
    short = step_message(StepView(investigation_id="a", step=1, outputs="12:00 up 3 days"))
    assert "12:00 up 3 days" in "\n".join(_texts(short))
    long = step_message(StepView(investigation_id="a", step=1, outputs_file="Step 1 outputs"))
    assert "Full outputs: Step 1 outputs" in "\n".join(_texts(long))


# -- resolution -----------------------------------------------------------------------------


def test_plan_steps_are_renumbered_from_any_list_style() -> None:
    plan = "1. Use the IP\n2) Fix DNS\n- Test with dig\n\n* restart the app\nplain line"
    assert plan_steps(plan) == [
        "Use the IP",
        "Fix DNS",
        "Test with dig",
        "restart the app",
        "plain line",
    ]


def test_resolution_card_has_cause_confidence_numbered_plan_evidence_and_buttons() -> None:
    view = ResolutionView(
        investigation_id="abc123",
        root_cause="DNS timeouts to 10.0.0.2:53 from pid 4242 (app)",
        resolution_plan="1. Point resolv.conf at 10.0.0.3\n2. Restart app",
        confidence="Medium",
        ebpf_evidence="dns probe: 37 queries, p99 5012 ms",
        hosts=["web-1", "web-2"],
        iterations=3,
        duration_s=75,
    )
    message = resolution_message(view)
    assert_within_slack_limits(message)
    text = "\n".join(_texts(message))
    assert "DNS timeouts to 10.0.0.2:53 from pid 4242 (app)" in text
    assert "Medium" in text
    assert "1. Point resolv.conf at 10.0.0.3\n2. Restart app" in text
    assert "p99 5012 ms" in text
    assert "web-1, web-2" in text and "3 iterations" in text and "75s" in text
    buttons = next(b for b in _dicts(message) if b["type"] == "actions")["elements"]
    assert {(b["action_id"], b["value"]) for b in buttons} == {
        (HANDOFF_ACTION, "abc123"),
        (DIG_DEEPER_ACTION, "abc123"),
    }
    assert "Medium confidence" in message.text


def test_resolution_from_a_hostile_model_is_escaped_and_cut_to_fit() -> None:
    view = ResolutionView(
        investigation_id="abc",
        root_cause=(HOSTILE * 60)[:4000],
        resolution_plan="\n".join(f"{i}. {HOSTILE}" for i in range(60)),
        confidence="Low",
        ebpf_evidence=(HOSTILE * 60)[:4000],
        stop_reason=HOSTILE,
        synthesised=True,
    )
    message = resolution_message(view)
    assert_within_slack_limits(message)
    assert_no_raw_control(message)
    assert "more steps" in "\n".join(_texts(message))


@settings(max_examples=60, deadline=None)
@given(
    cause=st.text(min_size=1, max_size=4000),
    plan=st.text(min_size=1, max_size=6000),
    evidence=st.text(max_size=4000),
)
def test_any_resolution_text_renders_within_limits(cause: str, plan: str, evidence: str) -> None:
    view = ResolutionView(
        investigation_id="abc",
        root_cause=cause,
        resolution_plan=plan,
        confidence="High",
        ebpf_evidence=evidence,
    )
    message = resolution_message(view)
    assert_within_slack_limits(message)
    assert_no_raw_control(message)


@settings(max_examples=40, deadline=None)
@given(
    reasoning=st.text(max_size=4000),
    commands=st.lists(st.text(min_size=1, max_size=2000), max_size=12),
    findings=st.lists(st.text(max_size=600), max_size=50),
)
def test_any_step_renders_within_limits(
    reasoning: str, commands: list[str], findings: list[str]
) -> None:
    view = StepView(
        investigation_id="abc",
        step=1,
        reasoning=reasoning,
        commands=[CommandRow(id=f"c{i}", command=c) for i, c in enumerate(commands)],
        findings=findings,
    )
    message = step_message(view)
    assert_within_slack_limits(message)
    assert_no_raw_control(message)


# -- approval -------------------------------------------------------------------------------


def test_pending_approval_has_approve_and_deny_buttons_that_name_the_command() -> None:
    view = ApprovalView(
        investigation_id="abc",
        step=2,
        host="web-1",
        command_id="dump",
        command="tcpdump -i eth0 -c 100",
        reason="captures packets",
        timeout_s=120,
    )
    message = approval_message(view)
    assert_within_slack_limits(message)
    actions = next(b for b in _dicts(message) if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [APPROVE_ACTION, DENY_ACTION]
    key = ApprovalKey.model_validate_json(actions[0]["value"])
    assert (key.investigation_id, key.command_id, key.step, key.host) == ("abc", "dump", 2, "web-1")
    text = "\n".join(_texts(message))
    assert "tcpdump -i eth0 -c 100" in text and "captures packets" in text and "120s" in text


def test_a_decided_approval_shows_who_decided_and_has_no_buttons() -> None:
    view = ApprovalView(
        investigation_id="abc",
        command_id="dump",
        command="tcpdump",
        state="denied",
        decided_by="U0BOB",
    )
    message = approval_message(view)
    assert not [b for b in _dicts(message) if b["type"] == "actions"]
    assert "Denied by <@U0BOB>" in "\n".join(_texts(message))
    expired = approval_message(view.model_copy(update={"state": "expired", "decided_by": None}))
    assert "went on without it" in "\n".join(_texts(expired))


def test_approval_of_a_huge_hostile_command_stays_within_limits() -> None:
    view = ApprovalView(
        investigation_id="abc", command_id="x", command=HOSTILE * 200, reason=HOSTILE * 20
    )
    message = approval_message(view)
    assert_within_slack_limits(message)
    assert_no_raw_control(message)


# -- handoff --------------------------------------------------------------------------------


def _entry(i: int) -> HandoffEntry:
    return HandoffEntry(
        investigation_id=f"inv{i}",
        status="running: step 2",
        impact=f"checkout fails on web-{i}",
        tried=[f"`ss -tlnp`: exit 0 on web-{i}"] * 20,
        hypothesis="connection pool exhausted",
        evidence="tcp_connect: 120 ECONNREFUSED to :5432",
        confidence="Medium",
        next_steps=["raise pool size", "check pgbouncer"],
        open_questions=["why only web-1?"],
    )


def test_handoff_has_status_impact_tried_hypothesis_next_steps_and_questions() -> None:
    message = handoff_message(HandoffView(channel_id="C1", entries=[_entry(1)], requested_by="U1"))
    assert_within_slack_limits(message)
    text = "\n".join(_texts(message))
    for expected in (
        "running: step 2",
        "checkout fails on web-1",
        "What was tried",
        "connection pool exhausted",
        "ECONNREFUSED",
        "raise pool size",
        "why only web-1?",
        "and 12 more",
    ):
        assert expected in text


def test_handoff_of_many_investigations_stays_within_limits() -> None:
    message = handoff_message(HandoffView(channel_id="C1", entries=[_entry(i) for i in range(30)]))
    assert_within_slack_limits(message)
    assert "older investigations not shown" in "\n".join(_texts(message))


def test_handoff_without_investigations_says_so() -> None:
    text = "\n".join(_texts(handoff_message(HandoffView(channel_id="C1"))))
    assert "No investigations" in text


# -- secrets and the fallback text ----------------------------------------------------------

SLACK_TOKEN = "xoxb-1234567890-abcdefghijklmnop"


def test_secrets_in_model_text_are_redacted_before_slack_sees_them() -> None:
    view = ResolutionView(
        investigation_id="abc",
        root_cause=f"the app sends {SLACK_TOKEN} to a dead webhook",
        resolution_plan="1. rotate https://admin:hunter2@db.internal/ credentials",
        confidence="High",
        ebpf_evidence=f"env had SLACK_TOKEN={SLACK_TOKEN}",
    )
    message = resolution_message(view)
    payload = json.dumps({"text": message.text, "blocks": _dicts(message)})
    assert SLACK_TOKEN not in payload and "hunter2" not in payload
    assert "[REDACTED]" in payload


def test_the_fallback_text_cannot_mention_the_channel() -> None:
    view = ResolutionView(
        investigation_id="abc",
        root_cause="<!channel> wake up <@U0BOSS>",
        resolution_plan="x",
        confidence="High",
    )
    message = resolution_message(view)
    assert "<" not in message.text and "&lt;!channel&gt;" in message.text


def test_an_answer_to_a_follow_up_names_the_question_and_who_asked() -> None:
    view = ResolutionView(
        investigation_id="abc",
        root_cause="resolv.conf points at 10.0.0.9, which is down",
        resolution_plan="1. point it at 10.0.0.3",
        confidence="High",
        question="why do you think it's <DNS>?",
        asked_by="U0BOB",
    )
    message = resolution_message(view)
    text = "\n".join(_texts(message))
    assert text.startswith("Answer\n")
    assert "<@U0BOB> asked: why do you think it's &lt;DNS&gt;?" in text
    assert_within_slack_limits(message)
