"""Every Web API call honours 429 Retry-After, up to the configured number of retries."""

from __future__ import annotations

import time

import pytest
from slack_sdk.errors import SlackApiError

from bot.settings import BotSettings
from bot.slack_api.client import build_web_client
from tests.support.fakes.slack_api import FakeSlackApi


def _settings(url: str, retries: int) -> BotSettings:
    return BotSettings(
        SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=url, BPFSLEUTH_SLACK_MAX_RETRIES=retries
    )


def test_a_429_is_waited_out_for_retry_after_then_sent_again() -> None:
    with FakeSlackApi() as fake:
        client = build_web_client(_settings(fake.url, 3))
        fake.rate_limit("chat.postMessage", times=2, retry_after=1)
        started = time.monotonic()
        reply = client.chat_postMessage(channel="C1", text="after the storm")
        took = time.monotonic() - started
        assert reply["ok"]
        statuses = [c.status for c in fake.calls if c.method == "chat.postMessage"]
        assert statuses == [429, 429, 200]
        assert took >= 2.0, "Retry-After: 1 twice means at least 2 s of waiting"
        assert len(fake.channel_roots("C1")) == 1


def test_retries_stop_at_the_maximum_and_the_error_surfaces() -> None:
    with FakeSlackApi() as fake:
        client = build_web_client(_settings(fake.url, 1))
        fake.rate_limit("chat.update", times=5, retry_after=1)
        with pytest.raises(SlackApiError) as info:
            client.chat_update(channel="C1", ts="1.0", text="x")
        assert info.value.response.status_code == 429
        assert [c.status for c in fake.calls if c.method == "chat.update"] == [429, 429]


def test_the_client_talks_to_slack_api_url() -> None:
    with FakeSlackApi() as fake:
        client = build_web_client(_settings(fake.url.rstrip("/"), 0))
        assert client.base_url == fake.url
        assert client.auth_test()["user_id"] == "UBOT"
