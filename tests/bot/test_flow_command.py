"""`/diagnose flow <name> [hosts]`: the flow runs on the hosts' queues through Celery like a plan,
its outputs follow in the thread, and the flow's analyzers write the answer card."""

from __future__ import annotations

import re

import pytest

from bot.chat.diagnose_command import CommandError, FlowCommand, parse_diagnose
from tests.support.bot import all_text, buttons
from tests.support.world import BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WAIT_S = 90.0


def test_flow_text_parses_into_a_flow_command() -> None:
    assert parse_diagnose("flow network_debug web-1,web-2", {"web-1", "web-2"}) == FlowCommand(
        name="network_debug", hosts=["web-1", "web-2"]
    )
    assert parse_diagnose("FLOW dns_debug") == FlowCommand(name="dns_debug")
    with pytest.raises(CommandError, match="Name the flow"):
        parse_diagnose("flow")
    with pytest.raises(CommandError, match="No live host named `db-9`"):
        parse_diagnose("flow dns_debug db-9", {"web-1"})
    with pytest.raises(CommandError, match="only hosts"):
        parse_diagnose("flow dns_debug web-1 and more")


def test_a_flow_runs_on_the_host_and_posts_its_outputs_and_answer_in_a_thread(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    sent = world.requests.slash_command(
        "flow first_minute alpha", channel_id="C0INC17", channel_name="inc-17", user_id="U0ALICE"
    )
    assert sent.status == 200 and sent.elapsed_s < 3.0
    ack = sent.json()["text"]
    found = re.search(r"Flow `first_minute`: investigation `([0-9a-f]+)` started on alpha", ack)
    assert found, ack
    investigation_id = found.group(1)
    slack = world.slack
    root = slack.wait_for(
        lambda: next(
            (m for m in slack.channel_roots("C0INC17") if investigation_id in all_text(m)), None
        ),
        timeout=WAIT_S,
        what="the flow's root message",
    )
    card = slack.wait_for(
        lambda: next(
            (m for m in slack.thread("C0INC17", root.ts) if "dig_deeper" in buttons(m)), None
        ),
        timeout=WAIT_S,
        what="the flow's answer card",
    )
    thread_text = "\n".join(all_text(m) for m in slack.thread("C0INC17", root.ts))
    for command_id in ("uptime", "memory", "disk_free", "top_cpu"):
        assert command_id in thread_text, command_id
    assert "flow first_minute" in thread_text.lower() or "first_minute" in thread_text
    assert all_text(card)


def test_an_unknown_flow_is_refused_with_the_nearest_names(world_checked: BotWorld) -> None:
    sent = world_checked.requests.slash_command(
        "flow network_debg", channel_id="C0INC18", channel_name="inc-18", user_id="U0ALICE"
    )
    assert sent.status == 200
    text = sent.json()["text"]
    assert "no flow named 'network_debg'" in text and "network_debug" in text
