"""The bot's listeners and middleware in process: signed requests through `App.dispatch`.

What needs no worker is tested here, on the app `bpfsleuth bot --http` builds, real Redis and
the fake Slack Web API: replies, refusals, parse errors (nothing may start), Slack's URL check.
What needs the server or a cluster (acks over HTTP, dedupe across requests, the progress
consumer, investigations that start) is in test_http_mode.py.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.support.bolt import InProcessBot, in_process_bot
from tests.support.bot import investigation_keys
from tests.support.fakes.slack_api import FakeSlackApi
from tests.support.redis_server import RedisServer
from tests.support.world import CHANNELS

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackApi]:
    fake = FakeSlackApi(channels=CHANNELS, usergroups={"S0ONCALL": ["U0CAROL"]}).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def bot(slack: FakeSlackApi, redis_server: RedisServer) -> InProcessBot:
    return in_process_bot(slack, redis_server.url)


@pytest.fixture
def host(bot: InProcessBot) -> str:
    """A live host with a name drawn for this test."""
    name = f"web-{secrets.token_hex(3)}"
    bot.beat(name)
    return name


@pytest.fixture
def checked(bot: InProcessBot, slack: FakeSlackApi) -> Iterator[InProcessBot]:
    """The bot, and after the test: no call it made broke Slack's spec, nothing was stored."""
    violations = len(slack.violations)
    keys = investigation_keys(bot.services.redis)
    yield bot
    assert slack.violations[violations:] == [], slack.violations[violations:]
    assert investigation_keys(bot.services.redis) == keys, "an investigation started"


def _ephemeral_text(body: dict[str, object]) -> str:
    """The reply's text as Slack shows it (mrkdwn entities unescaped)."""
    assert body["response_type"] == "ephemeral"
    return html.unescape(str(body["text"]))


def _posts_to(slack: FakeSlackApi, channel: str) -> int:
    return len([c for c in slack.calls_to("chat.postMessage") if c.args["channel"] == channel])


def test_help_gets_an_ephemeral_reply(checked: InProcessBot) -> None:
    sent = checked.requests.slash_command("help", channel_id="C0INC1", channel_name="inc-1")
    assert sent.status == 200
    body = sent.json()
    assert "/diagnose [host,host] <symptom>" in _ephemeral_text(body)
    assert any("/diagnose hosts" in str(block) for block in body["blocks"])


def test_hosts_lists_the_live_hosts_with_their_kernels(checked: InProcessBot, host: str) -> None:
    other = f"db-{secrets.token_hex(3)}"
    kernel = f"6.1.0-{secrets.token_hex(2)}-amd64"
    checked.beat(other, kernel)
    sent = checked.requests.slash_command("hosts", channel_id="C0INC1", channel_name="inc-1")
    body = sent.json()
    text = _ephemeral_text(body)
    assert host in text and other in text
    assert kernel in str(body["blocks"])


def test_a_parse_error_is_explained_and_nothing_starts(checked: InProcessBot, host: str) -> None:
    missing = f"nosuch-{secrets.token_hex(3)}"
    sent = checked.requests.slash_command(
        f"{host},{missing} disk full", channel_id="C0INC1", channel_name="inc-1"
    )
    text = _ephemeral_text(sent.json())
    assert f"No live host named `{missing}`" in text and host in text


def test_a_channel_outside_the_allowlist_is_refused(
    checked: InProcessBot, slack: FakeSlackApi, host: str
) -> None:
    posts = _posts_to(slack, "C0GEN")
    sent = checked.requests.slash_command(
        f"{host} the app is slow", channel_id="C0GEN", channel_name="general"
    )
    assert sent.status == 200
    text = _ephemeral_text(sent.json())
    assert "not enabled in this channel" in text and "inc-*" in text
    assert _posts_to(slack, "C0GEN") == posts


def test_a_user_outside_the_allowlist_cannot_start_but_can_read_help(
    checked: InProcessBot, slack: FakeSlackApi, host: str
) -> None:
    posts = _posts_to(slack, "C0INC1")
    sent = checked.requests.slash_command(
        f"{host} the app is slow", channel_id="C0INC1", channel_name="inc-1", user_id="U0MALLORY"
    )
    assert "not on the list" in _ephemeral_text(sent.json())
    assert _posts_to(slack, "C0INC1") == posts
    helped = checked.requests.slash_command(
        "help", channel_id="C0INC1", channel_name="inc-1", user_id="U0MALLORY"
    )
    assert "/diagnose" in _ephemeral_text(helped.json())


def test_the_bots_own_messages_are_ignored(checked: InProcessBot, slack: FakeSlackApi) -> None:
    before = len(slack.channel_calls("C0INC2"))
    own = {
        "type": "message",
        "user": "UBOT",
        "bot_id": "BBOT",
        "text": "<@UBOT> :mag: Investigating",
        "ts": f"{time.time():.6f}",
        "channel": "C0INC2",
    }
    sent = checked.requests.event(own, event_id=f"EvOWN{secrets.token_hex(4)}")
    assert sent.status == 200
    time.sleep(0.5)  # a lazy listener would have run by now
    assert [c.method for c in slack.channel_calls("C0INC2")[before:]] == []


def test_an_unsigned_event_is_refused(checked: InProcessBot) -> None:
    sent = checked.requests.post(
        b'{"type":"event_callback"}', "application/json", signature="v0=nope"
    )
    assert sent.status == 401


def test_a_mention_in_a_channel_outside_the_allowlist_is_refused(
    checked: InProcessBot, slack: FakeSlackApi, host: str
) -> None:
    before = len(slack.channel_calls("C0GEN", "chat.postEphemeral"))
    mention = {
        "type": "app_mention",
        "user": "U0BOB",
        "text": f"<@UBOT> look at {host}",
        "ts": f"{time.time():.6f}",
        "channel": "C0GEN",
    }
    sent = checked.requests.event(mention)
    assert sent.status == 200
    refusal = slack.wait_for(
        lambda: slack.channel_calls("C0GEN", "chat.postEphemeral")[before:], what="the refusal"
    )
    assert refusal[0].args["user"] == "U0BOB"
    assert "not enabled in this channel" in refusal[0].args["text"]
    assert slack.calls_to("conversations.info")[-1].args["channel"] == "C0GEN"


def test_slacks_url_verification_challenge_is_answered(checked: InProcessBot) -> None:
    challenge = secrets.token_urlsafe(38)
    body = json.dumps({"token": "legacy", "challenge": challenge, "type": "url_verification"})
    sent = checked.requests.post(body.encode(), "application/json")
    assert sent.status == 200
    assert sent.json() == {"challenge": challenge}
