"""Whole investigations from Slack: real Redis, real Celery workers, the bot in HTTP mode.

The model is scripted (tests.support.cluster): turn N of every investigation gets reply N.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

import pytest

from tests.support.bot import SIGNING_SECRET, BotProcess, all_text, bot_env, buttons
from tests.support.cluster import command_step, resolution
from tests.support.fakes.anthropic_api import FakeAnthropic, Text
from tests.support.fakes.slack_api import Message, SlackRequests
from tests.support.world import BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WAIT_S = 60.0


def _start(world: BotWorld, channel: str, text: str, user: str = "U0ALICE") -> str:
    """Send `/diagnose text` and return the investigation id from the ephemeral ack."""
    sent = world.requests.slash_command(
        text, channel_id=channel, channel_name=f"inc-{channel[-1]}", user_id=user
    )
    assert sent.status == 200 and sent.elapsed_s < 3.0
    ack = sent.json()["text"]
    found = re.search(r"Investigation `([0-9a-f]+)` started", ack)
    assert found, ack
    return found.group(1)


def _root(world: BotWorld, channel: str, investigation_id: str) -> Message:
    slack = world.slack
    return slack.wait_for(
        lambda: next(
            (m for m in slack.channel_roots(channel) if investigation_id in all_text(m)), None
        ),
        timeout=WAIT_S,
        what=f"the root message of {investigation_id}",
    )


def _resolution_cards(world: BotWorld, channel: str, root: Message) -> list[Message]:
    return [m for m in world.slack.thread(channel, root.ts) if "dig_deeper" in buttons(m)]


def _wait_resolved(world: BotWorld, channel: str, root: Message, count: int = 1) -> list[Message]:
    return world.slack.wait_for(
        lambda: (
            (cards := _resolution_cards(world, channel, root)) and len(cards) >= count and cards
        ),
        timeout=WAIT_S,
        what=f"{count} resolution card(s)",
    )


def test_a_slash_command_ends_with_the_resolution_card_in_its_thread(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [
            command_step(("load", "uptime"), ("mem", "free -m"), reasoning="check load & memory"),
            resolution("pid 4242 (java) holds 93% of memory <leak>"),
        ]
    )
    investigation_id = _start(world, "C0INC3", "alpha checkout is slow")
    root = _root(world, "C0INC3", investigation_id)
    assert "checkout is slow" in all_text(root)
    [card] = _wait_resolved(world, "C0INC3", root)
    card_text = all_text(card)
    assert "pid 4242 (java) holds 93% of memory &lt;leak&gt;" in card_text
    assert "High" in card_text and "1. do the scripted thing" in card_text
    assert buttons(card) == {"handoff_summary": investigation_id, "dig_deeper": investigation_id}

    thread = world.slack.thread("C0INC3", root.ts)
    step = next(m for m in thread if "Step 1" in all_text(m))
    step_text = all_text(step)
    assert "check load &amp; memory" in step_text
    assert "`uptime` on *alpha* — allowed; exit 0" in step_text
    assert "`free -m` on *alpha* — allowed; exit 0" in step_text
    assert "load average" in step_text  # the short outputs, inline
    assert thread.index(step) < thread.index(card)
    # The root message in the channel says it is resolved, with the cause.
    root_now = world.slack.wait_for(
        lambda: (
            (m := world.slack.messages[("C0INC3", root.ts)]) and "Resolved" in all_text(m) and m
        ),
        what="the root message marked resolved",
    )
    assert "pid 4242" in all_text(root_now)
    # Nothing about the investigation was posted outside its thread but the root.
    assert [m.ts for m in world.slack.channel_roots("C0INC3")] == [root.ts]
    # The audit says who asked, for every command run on the host.
    audit = [
        (e.host, e.argv, e.asked_by)
        for e in world.cluster.runtime.store.audit_entries(10_000)
        if e.investigation_id == investigation_id
    ]
    assert sorted(audit) == [
        ("alpha", "free -m", "slack:U0ALICE"),
        ("alpha", "uptime", "slack:U0ALICE"),
    ]


def test_step_messages_are_updated_in_place_not_reposted(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies(
        [
            command_step(("vm", "vmstat 1 3"), ("host", "hostname"), reasoning="sample vm"),
            resolution("fine"),
        ]
    )
    investigation_id = _start(world, "C0INC4", "alpha latency spikes")
    root = _root(world, "C0INC4", investigation_id)
    _wait_resolved(world, "C0INC4", root)
    steps = [m for m in world.slack.thread("C0INC4", root.ts) if "Step 1" in all_text(m)]
    assert len(steps) == 1
    assert steps[0].updates >= 1
    assert "`vmstat 1 3` on *alpha* — allowed; exit 0" in all_text(steps[0])


def test_long_outputs_go_to_a_file_in_the_thread(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("cpu", "cat /proc/cpuinfo"), ("ps", "ps -eo pid,comm,args")), resolution()]
    )
    investigation_id = _start(world, "C0INC5", "alpha cpu looks odd")
    root = _root(world, "C0INC5", investigation_id)
    _wait_resolved(world, "C0INC5", root)
    uploads = [u for u in world.slack.uploads.values() if u.thread_ts == root.ts]
    assert len(uploads) == 1
    content = uploads[0].content.decode()
    assert "$ cat /proc/cpuinfo" in content and "model name" in content
    assert "$ ps -eo pid,comm,args" in content
    assert uploads[0].channel == "C0INC5"
    step = next(m for m in world.slack.thread("C0INC5", root.ts) if "Step 1" in all_text(m))
    assert "Full outputs: Step 1 outputs" in all_text(step)


def test_a_mention_in_the_thread_continues_the_investigation(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies(
        [
            command_step(("load", "uptime")),
            resolution("first answer: DNS"),
            resolution("second answer: DNS because resolv.conf points at a dead server"),
        ]
    )
    investigation_id = _start(world, "C0INC6", "alpha name lookups fail")
    root = _root(world, "C0INC6", investigation_id)
    _wait_resolved(world, "C0INC6", root)
    mention = {
        "type": "app_mention",
        "user": "U0BOB",
        "text": "<@UBOT> why do you think it's DNS?",
        "ts": f"{time.time():.6f}",
        "thread_ts": root.ts,
        "channel": "C0INC6",
    }
    world.requests.event(mention)
    world.requests.event({**mention, "type": "message"})  # the same message, second delivery
    cards = _wait_resolved(world, "C0INC6", root, count=2)
    assert "second answer: DNS because resolv.conf" in all_text(cards[1])
    assert "<@U0BOB> asked: why do you think it's DNS?" in all_text(cards[1])
    assert "*Answer*" not in all_text(cards[0]) and "Answer" in all_text(cards[1])
    time.sleep(1.0)
    assert len(_resolution_cards(world, "C0INC6", root)) == 2
    stored = world.cluster.runtime.store.load(investigation_id).investigation
    assert [f.question for f in stored.followups] == ["why do you think it's DNS?"]
    assert stored.followups[0].asked_by == "slack:U0BOB"


def test_handoff_summarises_the_channels_investigations(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("load", "uptime")), resolution("disk /var is 100% full")]
    )
    investigation_id = _start(world, "C0INC7", "alpha writes fail")
    root = _root(world, "C0INC7", investigation_id)
    [card] = _wait_resolved(world, "C0INC7", root)

    sent = world.requests.slash_command("handoff", channel_id="C0INC7", channel_name="inc-7")
    assert "handoff" in sent.json()["text"].lower()
    summary = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.channel_roots("C0INC7") if m.text.startswith("Handoff")), None
        ),
        what="the handoff summary in the channel",
    )
    text = all_text(summary)
    for expected in (
        investigation_id,
        "resolved (High confidence)",
        "writes fail (hosts: alpha)",
        "disk /var is 100% full",
        "`uptime`: exit 0 on alpha",
        "do the scripted thing",
    ):
        assert expected in text

    # The button on the card posts the same summary into the investigation's thread.
    world.requests.block_action(
        action_id="handoff_summary",
        value=investigation_id,
        user_id="U0ALICE",
        channel_id="C0INC7",
        message_ts=card.ts,
        thread_ts=root.ts,
    )
    in_thread = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC7", root.ts) if m.text.startswith("Handoff")),
            None,
        ),
        what="the handoff summary in the thread",
    )
    assert "disk /var is 100% full" in all_text(in_thread)


def test_a_429_from_slack_is_waited_out_and_no_message_is_lost(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("load", "uptime")), resolution("recovered")])
    world.slack.rate_limit("chat.postMessage", times=2, retry_after=1)
    investigation_id = _start(world, "C0INC8", "alpha everything is slow")
    root = _root(world, "C0INC8", investigation_id)
    [card] = _wait_resolved(world, "C0INC8", root)
    assert "recovered" in all_text(card)
    thread = world.slack.thread("C0INC8", root.ts)
    assert any("Step 1" in all_text(m) for m in thread)
    limited = [c for c in world.slack.calls if c.status == 429]
    assert len(limited) >= 2
    assert len(world.slack.channel_roots("C0INC8")) == 1


def test_a_channel_at_its_cap_refuses_another_investigation(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("vm", "vmstat 1 4")), resolution("done")])
    first = _start(world, "C0INC9", "alpha one")
    second = _start(world, "C0INC9", "alpha two")
    refused = world.requests.slash_command("alpha three", channel_id="C0INC9", channel_name="inc-9")
    text = refused.json()["text"]
    assert "already has 2 investigations running" in text
    assert first in text and second in text
    for investigation_id in (first, second):
        _wait_resolved(world, "C0INC9", _root(world, "C0INC9", investigation_id))
    again = _start(world, "C0INC9", "alpha three")
    assert again not in (first, second)


def test_handoff_is_written_by_the_model_when_one_is_configured(
    world_checked: BotWorld, tmp_path: Path
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [command_step(("load", "uptime")), resolution("conntrack table full on alpha")]
    )
    investigation_id = _start(world, "C0INC10", "alpha drops new connections")
    _wait_resolved(world, "C0INC10", _root(world, "C0INC10", investigation_id))

    written = (
        "## Handoff\n- **conntrack** table full on alpha <raise nf_conntrack_max>\n"
        "- next: watch drops"
    )
    with FakeAnthropic([Text(written)]) as claude:
        env = bot_env(
            world.cluster.env,
            world.slack,
            world.redis.url,
            BPFSLEUTH_MODEL="anthropic",
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=claude.url,
        )
        second = BotProcess(env, tmp_path / "bot-with-claude.log")
        second.start()
        try:
            requests = SlackRequests(second.url, SIGNING_SECRET)
            requests.slash_command("handoff", channel_id="C0INC10", channel_name="inc-10")
            summary = world.slack.wait_for(
                lambda: next(
                    (
                        m
                        for m in world.slack.channel_roots("C0INC10")
                        if m.text.startswith("Handoff")
                    ),
                    None,
                ),
                what="the model's handoff",
            )
        finally:
            second.stop()
        assert claude.violations == []
        prompt = json.dumps(claude.requests[0]["messages"])
        assert investigation_id in prompt and "conntrack table full on alpha" in prompt
    text = all_text(summary)
    assert "*Handoff*" in text
    assert "• *conntrack* table full on alpha &lt;raise nf_conntrack_max&gt;" in text
    assert "written by the model" in text


def test_dig_deeper_runs_another_step_and_posts_a_new_card(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies(
        [
            command_step(("load", "uptime")),
            resolution("first: memory pressure"),
            command_step(("mem", "free -m"), reasoning="confirm memory pressure"),
            resolution("confirmed: memory pressure from pid 77"),
        ]
    )
    investigation_id = _start(world, "C0INC15", "alpha swaps a lot")
    root = _root(world, "C0INC15", investigation_id)
    [card] = _wait_resolved(world, "C0INC15", root)
    sent = world.requests.block_action(
        action_id="dig_deeper",
        value=investigation_id,
        user_id="U0ALICE",
        channel_id="C0INC15",
        message_ts=card.ts,
        thread_ts=root.ts,
    )
    assert sent.status == 200 and sent.elapsed_s < 3.0
    cards = _wait_resolved(world, "C0INC15", root, count=2)
    assert "confirmed: memory pressure from pid 77" in all_text(cards[1])
    assert "<@U0ALICE> asked: Dig deeper" in all_text(cards[1])
    thread = world.slack.thread("C0INC15", root.ts)
    step3 = next(m for m in thread if "Step 3" in all_text(m))
    assert "confirm memory pressure" in all_text(step3)
    assert "`free -m` on *alpha* — allowed; exit 0" in all_text(step3)
    assert thread.index(cards[0]) < thread.index(step3) < thread.index(cards[1])


def test_handoff_asked_in_a_thread_is_posted_in_that_thread(world_checked: BotWorld) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("load", "uptime")), resolution("ntp drift")])
    investigation_id = _start(world, "C0INC16", "alpha clock jumps")
    root = _root(world, "C0INC16", investigation_id)
    _wait_resolved(world, "C0INC16", root)
    world.requests.event(
        {
            "type": "app_mention",
            "user": "U0ALICE",
            "text": "<@UBOT> handoff",
            "ts": f"{time.time():.6f}",
            "thread_ts": root.ts,
            "channel": "C0INC16",
        }
    )
    summary = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC16", root.ts) if m.text.startswith("Handoff")),
            None,
        ),
        what="the handoff in the thread",
    )
    assert "ntp drift" in all_text(summary)
    assert not any(m.text.startswith("Handoff") for m in world.slack.channel_roots("C0INC16"))


def test_a_busy_step_is_updated_at_most_once_per_interval(world_checked: BotWorld) -> None:
    world = world_checked
    commands = [
        (f"c{i}", cmd)
        for i, cmd in enumerate(
            [
                "uptime",
                "hostname",
                "nproc",
                "uname -r",
                "free -m",
                "cat /proc/loadavg",
                "cat /proc/meminfo",
                "ps -e",
                "ss -s",
                "vmstat 1 2",
            ]
        )
    ]
    world.cluster.script_replies([command_step(*commands), resolution("busy but fine")])
    investigation_id = _start(world, "C0INC17", "alpha many things")
    root = _root(world, "C0INC17", investigation_id)
    started = time.monotonic()
    _wait_resolved(world, "C0INC17", root)
    took = time.monotonic() - started
    step = next(m for m in world.slack.thread("C0INC17", root.ts) if "Step 1" in all_text(m))
    updates = [c for c in world.slack.calls_to("chat.update") if c.args["ts"] == step.ts]
    # 10 commands make 20+ progress events; the interval is 0.3 s, plus the final update.
    assert 1 <= len(updates) <= took / 0.3 + 2, (len(updates), took)
    assert len(updates) < 20
    final = all_text(world.slack.messages[("C0INC17", step.ts)])
    assert final.count("allowed; exit 0") == 10


def test_requests_racing_for_the_last_slots_of_a_channel_cannot_exceed_the_cap(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies([command_step(("vm", "vmstat 1 2")), resolution("raced")])
    bodies = [
        world.requests.slash_command_body(
            f"alpha race {i}", channel_id="C0INC21", channel_name="inc-21"
        )
        for i in range(6)
    ]
    barrier = threading.Barrier(len(bodies))
    replies: list[str] = []

    def send(body: bytes) -> None:
        barrier.wait()
        sent = world.requests.post(body, "application/x-www-form-urlencoded")
        replies.append(html.unescape(sent.json()["text"]))

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    started = [r for r in replies if "started" in r]
    refused = [r for r in replies if "already has 2 investigations running" in r]
    assert len(replies) == 6
    assert len(started) == 2, replies
    assert len(refused) + len([r for r in replies if "busy starting" in r]) == 4, replies
