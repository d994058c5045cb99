"""The progress consumer in process (real Redis, fake Slack): a channel it cannot post in.

The race this pins down (seen once in 7 runs of the HTTP-mode test): a new investigation is
both in the active set and on the wake stream. When the consumer's periodic refresh picks it
up from the active set first, the root post fails and the consumer gives up on it; the wake
entry it had not read yet must not make it follow (and post) again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from bot.progress.consumer import ProgressConsumer
from bot.store.threads import SlackThread
from tests.support.bolt import InProcessBot, in_process_bot
from tests.support.fakes.slack_api import FakeSlackApi
from tests.support.redis_server import RedisServer
from tests.support.world import CHANNELS, UNINVITED

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackApi]:
    fake = FakeSlackApi(channels=CHANNELS | UNINVITED, not_member=set(UNINVITED)).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def bot(slack: FakeSlackApi, redis_server: RedisServer) -> InProcessBot:
    return in_process_bot(slack, redis_server.url)


def _attempts(slack: FakeSlackApi, channel: str) -> int:
    calls = slack.calls_to("chat.postMessage", ok_only=False)
    return len([c for c in calls if c.args.get("channel") == channel])


@pytest.mark.parametrize("passes", [2, 5])
def test_an_uninvited_channel_is_tried_once_and_the_asker_told_once(
    bot: InProcessBot, slack: FakeSlackApi, passes: int
) -> None:
    channel = next(iter(UNINVITED))
    consumer = ProgressConsumer(bot.services)
    consumer._wake_cursor = "0"  # as a consumer that has not read the newest wake entries yet
    investigation_id = secrets.token_hex(6)
    responses, attempts = len(slack.responses), _attempts(slack, channel)
    bot.services.threads.register(
        SlackThread(
            investigation_id=investigation_id,
            channel_id=channel,
            requested_by="U0ALICE",
            symptom="the app is slow",
            hosts=["alpha"],
            response_url=f"{slack.base}/commands/{investigation_id}",
        )
    )
    for _ in range(passes):
        consumer.poll_once(block_ms=50)

    assert _attempts(slack, channel) - attempts == 1, "one failed post, then it stops trying"
    told = slack.responses[responses:]
    assert len(told) == 1 and investigation_id in told[0][1]["text"]
    assert investigation_id not in bot.services.threads.active()
