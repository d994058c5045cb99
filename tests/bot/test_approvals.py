"""Approve / Deny in the thread, end to end: the host waits for a responder, then runs or not.

The host worker's approver (worker.host.approver_redis) waits `BPFSLEUTH_APPROVAL_WAIT_S` for a
decision; the bot shows the host's `CommandVerdict(needs_approval)` with buttons, and only
responders can decide. Everything is real (Redis, control and host workers, the bot over signed
HTTP) but Slack's Web API. This module runs its own world with a short wait.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bot import all_text, buttons
from tests.support.cluster import command_step, resolution
from tests.support.fakes.slack_api import Message
from tests.support.world import CHANNELS, BotWorld, bot_world
from worker.distributed.store import AuditEntry
from worker.loop.investigation import Investigation
from worker.protocol import CommandResult

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WAIT_S = 10


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotWorld]:
    """The package's world, but the host waits `WAIT_S` for approvals."""
    with bot_world(
        tmp_path_factory.mktemp("approval-world"),
        cluster_settings={"BPFSLEUTH_APPROVAL_WAIT_S": str(WAIT_S)},
    ) as started:
        yield started


def _start(world: BotWorld, channel: str, text: str) -> tuple[str, Message]:
    sent = world.requests.slash_command(text, channel_id=channel, channel_name=CHANNELS[channel])
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


def _finished(world: BotWorld, investigation_id: str) -> Investigation:
    return world.cluster.follow(investigation_id, timeout_s=WAIT_S + 60)


def _result(inv: Investigation, command_id: str) -> CommandResult:
    """What the model was given for `command_id` at its next turn (the stored evidence)."""
    return next(r.command_results[command_id] for r in inv.results_of(1))


def _host_audit(world: BotWorld, investigation_id: str, command_id: str) -> list[AuditEntry]:
    """The host's audit entries for a command (the bot's decision entries have no argv)."""
    return [
        e
        for e in world.cluster.runtime.store.audit_entries(10_000)
        if e.investigation_id == investigation_id and e.id == command_id and e.argv
    ]


def test_a_responder_approves_and_the_command_runs_on_the_host(world_checked: BotWorld) -> None:
    world = world_checked
    marker = f"level-{secrets.token_hex(4)}"
    env_file = Path(tempfile.mkdtemp(prefix="approvals-")) / "app.env"
    env_file.write_text(f"LOG_LEVEL={marker}\n")
    world.cluster.script_replies(
        [command_step(("git", f"cat {env_file}"), ("who", "id -un")), resolution("read it")]
    )
    investigation_id, root = _start(world, "C0INC11", "alpha which log level")
    request = _approval(world, "C0INC11", root, f"cat {env_file}")
    values = buttons(request)  # the fake updates `request` in place
    assert set(values) == {"approval_approve", "approval_deny"}
    _click(world, request, values, "approval_approve", "U0BOB", "C0INC11")
    inv = _finished(world, investigation_id)
    ran = _result(inv, "git")
    assert ran.ran and ran.exit_code == 0 and marker in ran.stdout
    assert _result(inv, "who").ran
    assert "Approved by <@U0BOB>" in all_text(world.slack.messages[("C0INC11", request.ts)])
    decision = json.loads(world.client.get(f"bpfsleuth:approval:{investigation_id}:git") or "{}")
    assert decision["approved"] is True and decision["by"] == "slack:U0BOB"
    audit = _host_audit(world, investigation_id, "git")
    assert [(e.ran, e.approved_by, e.argv) for e in audit] == [
        (True, "slack:U0BOB", f"cat {env_file}")
    ]
    # A second responder cannot overturn it.
    before = len(world.slack.channel_calls("C0INC11", "chat.postEphemeral"))
    _click(world, request, values, "approval_deny", "U0CAROL", "C0INC11")
    again = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC11", "chat.postEphemeral")[before:],
        what="the second answer",
    )
    assert "already approved" in again[0].args["text"]


def test_a_member_of_the_responder_group_denies_and_nothing_runs(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("env", "cat /root/.profile")), resolution("ok")])
    investigation_id, root = _start(world, "C0INC12", "alpha profile of root")
    request = _approval(world, "C0INC12", root, "cat /root/.profile")
    _click(world, request, buttons(request), "approval_deny", "U0CAROL", "C0INC12")
    inv = _finished(world, investigation_id)
    assert world.slack.calls_to("usergroups.users.list")[-1].args["usergroup"] == "S0ONCALL"
    assert "Denied by <@U0CAROL>" in all_text(world.slack.messages[("C0INC12", request.ts)])
    denied = _result(inv, "env")
    assert not denied.ran and denied.stdout == ""
    assert "not approved (slack:U0CAROL" in denied.note
    assert [(e.ran, e.approved_by) for e in _host_audit(world, investigation_id, "env")] == [
        (False, "")
    ]


def test_someone_who_is_not_a_responder_is_refused_and_nothing_runs(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("git", "git --version")), resolution("ok")])
    investigation_id, root = _start(world, "C0INC13", "alpha which git")
    request = _approval(world, "C0INC13", root, "git --version")
    before = len(world.slack.channel_calls("C0INC13", "chat.postEphemeral"))
    _click(world, request, buttons(request), "approval_approve", "U0ALICE", "C0INC13")
    refusal = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC13", "chat.postEphemeral")[before:],
        what="the refusal",
    )
    assert refusal[0].args["user"] == "U0ALICE"
    assert "Only responders can approve" in refusal[0].args["text"]
    assert set(buttons(world.slack.messages[("C0INC13", request.ts)])) == {
        "approval_approve",
        "approval_deny",
    }
    inv = _finished(world, investigation_id)
    skipped = _result(inv, "git")
    assert not skipped.ran and f"no decision within {WAIT_S} s" in skipped.note
    decision = json.loads(world.client.get(f"bpfsleuth:approval:{investigation_id}:git") or "{}")
    assert decision["approved"] is False and decision["by"] == "worker:timeout"


def test_without_a_decision_the_loop_goes_on_after_the_wait_and_says_so(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("nap", "sleep 1"), ("load", "uptime")), resolution("went on")]
    )
    investigation_id, root = _start(world, "C0INC14", "alpha odd pauses")
    request = _approval(world, "C0INC14", root, "sleep 1")
    approve_value = buttons(request)["approval_approve"]  # the fake updates `request` in place
    text = all_text(request)
    assert "alpha" in text and "not on the list of known read-only diagnostics" in text
    assert f"goes on without it after {WAIT_S}s" in text  # the bot reads the hosts' wait
    card = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC14", root.ts) if "dig_deeper" in buttons(m)),
            None,
        ),
        timeout=WAIT_S + 60,
        what="the resolution",
    )
    assert "went on" in all_text(card)
    expired = world.slack.wait_for(
        lambda: (
            (m := world.slack.messages[("C0INC14", request.ts)])
            and "went on without it" in all_text(m)
            and m
        ),
        what="the request marked expired",
    )
    assert buttons(expired) == {}
    inv = _finished(world, investigation_id)
    nap = _result(inv, "nap")
    assert not nap.ran and f"no decision within {WAIT_S} s" in nap.note
    assert _result(inv, "load").ran
    step = next(m for m in world.slack.thread("C0INC14", root.ts) if "Step 1" in all_text(m))
    assert "`sleep 1` on *alpha* — needs approval" in all_text(step)
    assert "`uptime` on *alpha* — allowed; exit 0" in all_text(step)
    # A late click changes nothing and says why.
    before = len(world.slack.channel_calls("C0INC14", "chat.postEphemeral"))
    world.requests.block_action(
        action_id="approval_approve",
        value=approve_value,
        user_id="U0BOB",
        channel_id="C0INC14",
        message_ts=request.ts,
    )
    late = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC14", "chat.postEphemeral")[before:],
        what="the late answer",
    )
    assert "already expired" in late[0].args["text"]
    decision = json.loads(world.client.get(f"bpfsleuth:approval:{investigation_id}:nap") or "{}")
    assert decision["by"] == "worker:timeout"
