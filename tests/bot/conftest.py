"""The bot's integration tests share one world per package (started only when a test asks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.world import ALERT_TOKEN, BotWorld, bot_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotWorld]:
    with bot_world(
        tmp_path_factory.mktemp("bot-world"), bot_settings={"BPFSLEUTH_ALERT_TOKEN": ALERT_TOKEN}
    ) as started:
        yield started


@pytest.fixture
def world_checked(world: BotWorld) -> Iterator[BotWorld]:
    """The world, and after the test: no call the bot made broke Slack's spec."""
    before = len(world.slack.violations)
    yield world
    assert world.slack.violations[before:] == [], world.slack.violations[before:]
