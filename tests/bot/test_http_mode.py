"""The bot in HTTP mode, as Slack talks to it: signed requests, acks, refusals, dedupe.

These need the server and the cluster; replies and refusals that start nothing are tested in
process in test_listeners.py."""

from __future__ import annotations

import html
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.support.bot import investigation_keys
from tests.support.fakes.slack_api import RecordedCall
from tests.support.world import ALERT_TOKEN, BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]
SLACK_ACK_DEADLINE_S = 3.0


def _ephemeral_text(body: dict[str, object]) -> str:
    """The reply's text as Slack shows it (mrkdwn entities unescaped)."""
    assert body["response_type"] == "ephemeral"
    return html.unescape(str(body["text"]))


def test_help_is_acked_in_time_with_an_ephemeral_reply(world_checked: BotWorld) -> None:
    sent = world_checked.requests.slash_command("help", channel_id="C0INC1", channel_name="inc-1")
    assert sent.status == 200
    assert sent.elapsed_s < SLACK_ACK_DEADLINE_S
    assert "/diagnose [host,host] <symptom>" in _ephemeral_text(sent.json())


def _posts_to(world: BotWorld, channel: str) -> int:
    return len(
        [c for c in world.slack.calls_to("chat.postMessage") if c.args["channel"] == channel]
    )


def _nothing_started(world: BotWorld, before_keys: set[str], channel: str, before: int) -> None:
    """No investigation was stored (a start stores it before enqueuing its first task), and
    nothing was posted in the channel (the progress consumer would post its root)."""
    time.sleep(0.5)
    assert investigation_keys(world.client) == before_keys
    assert _posts_to(world, channel) == before


def test_a_bad_signature_is_refused_and_nothing_is_enqueued(world_checked: BotWorld) -> None:
    keys = investigation_keys(world_checked.client)
    posts = _posts_to(world_checked, "C0INC1")
    sent = world_checked.requests.slash_command(
        "alpha the app is slow",
        channel_id="C0INC1",
        channel_name="inc-1",
        signature="v0=" + "0" * 64,
    )
    assert sent.status == 401
    _nothing_started(world_checked, keys, "C0INC1", posts)


def test_a_stale_timestamp_is_refused_and_nothing_is_enqueued(world_checked: BotWorld) -> None:
    keys = investigation_keys(world_checked.client)
    posts = _posts_to(world_checked, "C0INC1")
    six_minutes_ago = int(time.time()) - 6 * 60
    sent = world_checked.requests.slash_command(
        "alpha the app is slow",
        channel_id="C0INC1",
        channel_name="inc-1",
        timestamp=six_minutes_ago,
    )
    assert sent.status == 401
    _nothing_started(world_checked, keys, "C0INC1", posts)


def _mention(channel: str, ts: str, text: str, user: str = "U0ALICE") -> dict[str, object]:
    return {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel}


def test_a_retried_event_is_handled_once(world_checked: BotWorld) -> None:
    slack = world_checked.slack

    def pointers() -> list[RecordedCall]:
        return slack.channel_calls("C0INC2", "chat.postEphemeral")

    before = len(pointers())
    event = _mention("C0INC2", "1700000000.000100", "<@UBOT> hello")
    first = world_checked.requests.event(event, event_id="EvRETRY1")
    retry = world_checked.requests.event(event, event_id="EvRETRY1", retry_num=1)
    assert first.status == 200 and retry.status == 200
    slack.wait_for(lambda: len(pointers()) > before, what="the pointer")
    time.sleep(0.5)
    replies = pointers()[before:]
    assert len(replies) == 1
    assert replies[0].args["user"] == "U0ALICE" and "/diagnose" in replies[0].args["text"]


def test_a_mention_delivered_as_app_mention_and_message_is_handled_once(
    world_checked: BotWorld,
) -> None:
    slack = world_checked.slack

    def replies() -> list[RecordedCall]:
        return slack.channel_calls("C0INC2", "chat.postEphemeral")

    before = len(replies())
    mention = _mention("C0INC2", "1700000000.000200", "<@UBOT> are you there?")
    message = {**mention, "type": "message", "channel_type": "channel"}
    world_checked.requests.event(message, event_id="EvTWICE-MSG")
    world_checked.requests.event(mention, event_id="EvTWICE-MENTION")
    slack.wait_for(lambda: len(replies()) > before, what="a reply")
    time.sleep(0.5)
    assert len(replies()) == before + 1


def test_a_channel_the_bot_was_not_invited_to_gets_told_through_the_response_url(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    slack = world.slack
    before = len(slack.responses)
    sent = world.requests.slash_command(
        "alpha the app is slow", channel_id="C0OUT", channel_name="inc-uninvited"
    )
    investigation_id = json.loads(sent.body)["text"].split("`")[1]
    told = slack.wait_for(lambda: slack.responses[before:], what="the response_url message")
    path, body = told[0]
    assert path.startswith("/commands/")
    assert body["response_type"] == "ephemeral"
    assert "/invite @bpfsleuth" in body["text"] and investigation_id in body["text"]
    time.sleep(1.0)
    attempts = [
        c
        for c in slack.calls_to("chat.postMessage", ok_only=False)
        if c.args.get("channel") == "C0OUT"
    ]
    assert len(attempts) == 1, "one failed post, then it stops trying"


def test_without_hosts_the_investigation_runs_on_every_live_host(world_checked: BotWorld) -> None:
    sent = world_checked.requests.slash_command(
        "the app is slow since the deploy", channel_id="C0INC1", channel_name="inc-1"
    )
    text = _ephemeral_text(sent.json())
    assert "started on alpha" in text, text
    investigation_id = text.split("`")[1]
    stored = world_checked.cluster.runtime.store.load(investigation_id).investigation
    assert stored.hosts == ["alpha"]
    assert stored.symptom == "the app is slow since the deploy"


def test_the_alertmanager_webhook_is_served_beside_slack_events(world_checked: BotWorld) -> None:
    """HTTP mode mounts the alert receiver (bot/alerts) at /alerts when a token is configured;
    its refusals come from the receiver itself, and nothing starts."""
    url = world_checked.bot.url.replace("/slack/events", "/alerts")

    def investigations() -> set[str]:
        return {key.split(":")[2] for key in world_checked.client.keys("bpfsleuth:inv:*")}

    before = investigations()

    def post(body: bytes, token: str | None) -> int:
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(b"{}", None) == 401
    assert post(b"{}", "wrong-token") == 401
    assert post(b"{not json", ALERT_TOKEN) == 400
    assert post(json.dumps({"version": "4", "alerts": "nope"}).encode(), ALERT_TOKEN) == 422
    assert investigations() == before  # no investigation started
