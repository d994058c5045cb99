"""Bot settings from the environment: lists, patterns, responders, and clear refusals."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from bot.settings import BotSettings


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> BotSettings:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "BPFSLEUTH_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return BotSettings()


def test_defaults_allow_every_channel_and_user_and_no_approver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    assert settings.api_url == "https://slack.com/api/"
    assert settings.channel_allowed("C1", "random") and settings.user_allowed("U1")
    assert settings.responders == [] and settings.max_per_channel == 3


def test_channel_patterns_match_names_or_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, BPFSLEUTH_CHANNELS=" inc-*, #ops ,C0PRIV ")
    assert settings.channels == ["inc-*", "#ops", "C0PRIV"]
    assert settings.channel_allowed("C9", "inc-2026-11-db")
    assert settings.channel_allowed("C9", "ops")
    assert settings.channel_allowed("C0PRIV", None)
    assert not settings.channel_allowed("C9", "general")
    assert not settings.channel_allowed("C9", None)
    assert not settings.channel_allowed("C9", "incident")  # inc-* needs the dash


def test_users_and_responders(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch, BPFSLEUTH_USERS="U0A,U0B", BPFSLEUTH_RESPONDERS="U0B,S0ONCALL,W0ENT"
    )
    assert settings.user_allowed("U0A") and not settings.user_allowed("U0C")
    assert settings.responder_users == ["U0B", "W0ENT"]
    assert settings.responder_groups == ["S0ONCALL"]


def test_a_responder_that_is_not_an_id_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="neither a user ID"):
        _settings(monkeypatch, BPFSLEUTH_RESPONDERS="@oncall")


def test_the_api_url_gets_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings(monkeypatch, SLACK_API_URL="http://127.0.0.1:9/api").api_url == (
        "http://127.0.0.1:9/api/"
    )


def test_limits_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        _settings(monkeypatch, BPFSLEUTH_MAX_PER_CHANNEL="0")
    with pytest.raises(ValidationError):
        _settings(monkeypatch, BPFSLEUTH_SLACK_UPLOAD_CHARS="5000")
