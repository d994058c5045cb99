"""The bot joins docker-compose.yml as a service that a valid Compose file describes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import yaml

from tests.support.paths import REPO

SHARED = REPO.parent / "shared"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_with_the_bot_still_validates_against_the_compose_spec() -> None:
    schema = json.loads((SHARED / "specs" / "compose-spec.json").read_text())
    errors = [
        f"{list(e.path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(_compose())
    ]
    assert errors == []


def test_the_bot_service_runs_the_bot_against_the_same_redis_with_its_slack_settings() -> None:
    services = _compose()["services"]
    bot = services["bot"]
    assert bot["command"] == ["bot"]
    assert bot["image"] == services["host-worker"]["image"]
    env = bot["environment"]
    assert env["REDIS_URL"] == services["control-worker"]["environment"]["REDIS_URL"]
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_API_URL",
        "BPFSLEUTH_CHANNELS",
        "BPFSLEUTH_RESPONDERS",
    ):
        assert name in env, name
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "privileged" not in bot and "pid" not in bot, "the bot runs nothing on the host"
    assert "slack" in bot["profiles"], "a plain `docker compose up` without tokens skips it"
