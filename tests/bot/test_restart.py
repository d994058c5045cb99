"""The bot killed mid-investigation and started again picks up where it stopped: nothing lost,
nothing posted twice (its rendering state and stream cursors live in Redis)."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.bot import all_text, buttons
from tests.support.cluster import command_step, resolution
from tests.support.world import BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_a_bot_killed_mid_step_resumes_the_thread_without_duplicates(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("vm", "vmstat 1 3"), reasoning="sample for a while"), resolution("survived")]
    )
    sent = world.requests.slash_command(
        "alpha slow after deploy", channel_id="C0INC19", channel_name="inc-19"
    )
    found = re.search(r"Investigation `([0-9a-f]+)` started", sent.json()["text"])
    assert found, sent.body
    investigation_id = found.group(1)
    root = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.channel_roots("C0INC19") if investigation_id in all_text(m)),
            None,
        ),
        what="the root message",
    )
    world.slack.wait_for(
        lambda: any("Step 1" in all_text(m) for m in world.slack.thread("C0INC19", root.ts)),
        what="step 1",
    )
    time.sleep(0.5)  # mid-step (vmstat runs 2 s), not in the middle of a Slack call
    world.bot.kill()
    world.bot.start()
    card = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC19", root.ts) if "dig_deeper" in buttons(m)),
            None,
        ),
        timeout=60,
        what="the resolution after the restart",
    )
    assert "survived" in all_text(card)
    thread = world.slack.thread("C0INC19", root.ts)
    steps = [m for m in thread if "Step 1" in all_text(m)]
    assert len(steps) == 1
    line = next(x for x in all_text(steps[0]).splitlines() if "vmstat 1 3" in x)
    assert "`vmstat 1 3` on *alpha* — allowed; exit 0" in line, line
    assert len([m for m in thread if "dig_deeper" in buttons(m)]) == 1
    assert len([m for m in world.slack.channel_roots("C0INC19")]) == 1
    # and the restarted bot still answers
    assert world.requests.slash_command("help", channel_id="C0INC19").status == 200
