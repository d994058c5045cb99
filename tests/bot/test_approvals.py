"""Approve / Deny in the thread: only responders decide, the first decision stands, it is audited.

The loop's side of an approval is a `CommandVerdict(needs_approval)` progress event from the
host that holds the command, and a `CommandFinished` when it ran or was given up. The first test
drives that through the real host worker; the decision tests publish the host's event through
the real store (the host worker shipped here does not wait for a decision yet: its approver
gives up at once, which the first test shows).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.bot.conftest import BotWorld
from tests.bot.harness import all_text, buttons
from tests.distributed.cluster import command_step, resolution
from tests.fakes.slack_api import Message
from worker.loop.events import CommandVerdict

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _start(world: BotWorld, channel: str, text: str) -> tuple[str, Message]:
    sent = world.requests.slash_command(text, channel_id=channel, channel_name="inc-x")
    found = re.search(r"Investigation `([0-9a-f]+)` started", sent.json()["text"])
    assert found, sent.body
    investigation_id = found.group(1)
    root = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.channel_roots(channel) if investigation_id in all_text(m)),
            None,
        ),
        what="the root message",
    )
    return investigation_id, root


def _approval(world: BotWorld, channel: str, root: Message, command: str) -> Message:
    return world.slack.wait_for(
        lambda: next(
            (
                m
                for m in world.slack.thread(channel, root.ts)
                if "Approval needed" in all_text(m) and command in all_text(m)
            ),
            None,
        ),
        what=f"the approval request for {command}",
    )


def test_a_command_needing_approval_is_shown_and_the_loop_goes_on_without_a_decision(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("nap", "sleep 1"), ("load", "uptime")), resolution("went on")]
    )
    investigation_id, root = _start(world, "C0INC11", "alpha odd pauses")
    request = _approval(world, "C0INC11", root, "sleep 1")
    approve_value = buttons(request).get("approval_approve", "")
    text = all_text(request)
    assert "alpha" in text and "not on the list of known read-only diagnostics" in text
    card = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC11", root.ts) if "dig_deeper" in buttons(m)),
            None,
        ),
        what="the resolution",
    )
    assert "went on" in all_text(card)
    expired = world.slack.wait_for(
        lambda: (
            (m := world.slack.messages[("C0INC11", request.ts)])
            and "went on without it" in all_text(m)
            and m
        ),
        what="the request marked expired",
    )
    assert buttons(expired) == {}
    step = next(m for m in world.slack.thread("C0INC11", root.ts) if "Step 1" in all_text(m))
    assert "`sleep 1` on *alpha* — needs approval" in all_text(step)
    assert "`uptime` on *alpha* — allowed; exit 0" in all_text(step)
    # A late click changes nothing and says why.
    before = len(world.slack.channel_calls("C0INC11", "chat.postEphemeral"))
    world.requests.block_action(
        action_id="approval_approve",
        value=approve_value,
        user_id="U0BOB",
        channel_id="C0INC11",
        message_ts=request.ts,
    )
    late = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC11", "chat.postEphemeral")[before:],
        what="the late answer",
    )
    assert "already expired" in late[0].args["text"]
    assert world.client.get(f"bpfsleuth:approval:{investigation_id}:nap") is None


def _pending_request(
    world: BotWorld, channel: str, command_id: str
) -> tuple[str, Message, dict[str, str]]:
    """An investigation whose step 1 is running, and a host's approval request in its thread."""
    # step 1 runs about 12 s (each command is cut at the 3 s command timeout used here), so
    # the request is still open while the test clicks, even on a busy machine
    slow = [(f"vm{i}", "vmstat 1 5") for i in range(4)]
    world.cluster.script_replies([command_step(*slow), resolution("done")])
    investigation_id, root = _start(world, channel, "alpha slow disk")
    world.slack.wait_for(
        lambda: any("Step 1" in all_text(m) for m in world.slack.thread(channel, root.ts)),
        what="step 1",
    )
    world.cluster.runtime.store.publish(
        CommandVerdict(
            investigation_id=investigation_id,
            step=1,
            host="alpha",
            id=command_id,
            command="tcpdump -c 5 -i lo",
            verdict="needs_approval",
            reason="tcpdump captures packet contents (may include secrets)",
        )
    )
    request = _approval(world, channel, root, "tcpdump -c 5 -i lo")
    return investigation_id, request, buttons(request)  # the fake updates `request` in place


def _click(
    world: BotWorld, request: Message, values: dict[str, str], action: str, user: str, channel: str
) -> None:
    sent = world.requests.block_action(
        action_id=action,
        value=values[action],
        user_id=user,
        channel_id=channel,
        message_ts=request.ts,
    )
    assert sent.status == 200 and sent.elapsed_s < 3.0


def test_a_responder_approves_and_the_decision_is_recorded_and_audited(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    investigation_id, request, values = _pending_request(world, "C0INC12", "dump")
    assert set(values) == {"approval_approve", "approval_deny"}
    _click(world, request, values, "approval_approve", "U0BOB", "C0INC12")
    decided = world.slack.wait_for(
        lambda: (
            (m := world.slack.messages[("C0INC12", request.ts)])
            and "Approved by <@U0BOB>" in all_text(m)
            and m
        ),
        timeout=60,
        what="the request marked approved",
    )
    assert buttons(decided) == {}
    decision = json.loads(world.client.get(f"bpfsleuth:approval:{investigation_id}:dump") or "{}")
    assert decision["approved"] is True and decision["by"] == "slack:U0BOB"
    audit = [
        e
        for e in world.cluster.runtime.store.audit_entries(10_000)
        if e.investigation_id == investigation_id and e.id == "dump"
    ]
    assert [(e.verdict, e.approved_by) for e in audit] == [("approved", "slack:U0BOB")]
    # A second responder cannot overturn it.
    before = len(world.slack.channel_calls("C0INC12", "chat.postEphemeral"))
    _click(world, request, values, "approval_deny", "U0CAROL", "C0INC12")
    again = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC12", "chat.postEphemeral")[before:],
        timeout=60,
        what="the second answer",
    )
    assert "already approved" in again[0].args["text"]


def test_a_member_of_the_responder_group_may_deny(world_checked: BotWorld) -> None:
    world = world_checked
    investigation_id, request, values = _pending_request(world, "C0INC13", "dump")
    _click(world, request, values, "approval_deny", "U0CAROL", "C0INC13")
    world.slack.wait_for(
        lambda: "Denied by <@U0CAROL>" in all_text(world.slack.messages[("C0INC13", request.ts)]),
        timeout=60,
        what="the request marked denied",
    )
    assert world.slack.calls_to("usergroups.users.list")[-1].args["usergroup"] == "S0ONCALL"
    decision = json.loads(world.client.get(f"bpfsleuth:approval:{investigation_id}:dump") or "{}")
    assert decision["approved"] is False and decision["by"] == "slack:U0CAROL"


def test_someone_who_is_not_a_responder_is_refused_and_nothing_is_recorded(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    investigation_id, request, values = _pending_request(world, "C0INC14", "dump")
    before = len(world.slack.channel_calls("C0INC14", "chat.postEphemeral"))
    _click(world, request, values, "approval_approve", "U0ALICE", "C0INC14")
    refusal = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC14", "chat.postEphemeral")[before:],
        timeout=60,
        what="the refusal",
    )
    assert refusal[0].args["user"] == "U0ALICE"
    assert "Only responders can approve" in refusal[0].args["text"]
    assert world.client.get(f"bpfsleuth:approval:{investigation_id}:dump") is None
    assert "Approval needed" in all_text(world.slack.messages[("C0INC14", request.ts)])
    assert set(buttons(world.slack.messages[("C0INC14", request.ts)])) == {
        "approval_approve",
        "approval_deny",
    }
    audit = [
        e
        for e in world.cluster.runtime.store.audit_entries(10_000)
        if e.investigation_id == investigation_id and e.id == "dump"
    ]
    assert audit == []
