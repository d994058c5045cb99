"""Bot configuration, read from the environment once (README "Slack" lists every variable)."""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BotSettings(BaseSettings):
    """Defaults allow everything a Slack workspace already allows; narrow them per deployment."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    api_url: str = Field(default=DEFAULT_SLACK_API_URL, alias="SLACK_API_URL")
    redis_url: str = Field(default="redis://localhost:6379/0", alias="REDIS_URL")
    channels: CommaList = Field(
        default_factory=list,
        alias="BPFSLEUTH_CHANNELS",
        description="Channel names, IDs or fnmatch patterns (inc-*); empty allows every channel.",
    )
    users: CommaList = Field(
        default_factory=list,
        alias="BPFSLEUTH_USERS",
        description="User IDs allowed to start investigations; empty allows everyone.",
    )
    responders: CommaList = Field(
        default_factory=list,
        alias="BPFSLEUTH_RESPONDERS",
        description="User IDs or user group IDs (S...) allowed to approve; empty allows nobody.",
    )
    max_per_channel: int = Field(default=3, ge=1, le=100, alias="BPFSLEUTH_MAX_PER_CHANNEL")
    default_hosts: CommaList = Field(
        default_factory=list,
        alias="BPFSLEUTH_DEFAULT_HOSTS",
        description="Hosts used when /diagnose names none; empty means every live host.",
    )
    slack_max_retries: int = Field(default=3, ge=0, le=10, alias="BPFSLEUTH_SLACK_MAX_RETRIES")
    update_interval_s: float = Field(
        default=1.0, ge=0.0, le=30.0, alias="BPFSLEUTH_SLACK_UPDATE_INTERVAL_S"
    )
    dedupe_ttl_s: int = Field(default=3600, ge=60, alias="BPFSLEUTH_DEDUPE_TTL_S")
    silent_after_s: float = Field(
        default=900.0,
        ge=10,
        alias="BPFSLEUTH_SLACK_SILENT_S",
        description="An investigation with no progress this long no longer counts as running.",
    )
    consumer_lease_s: int = Field(
        default=15,
        ge=2,
        le=300,
        alias="BPFSLEUTH_SLACK_LEASE_S",
        description="How long a vanished bot's progress consumer blocks another from taking over.",
    )
    upload_threshold_chars: int = Field(
        default=1200,
        ge=200,
        le=2800,
        alias="BPFSLEUTH_SLACK_UPLOAD_CHARS",
        description="A step's outputs longer than this go to a file in the thread, not inline.",
    )

    _split = field_validator("channels", "users", "responders", "default_hosts", mode="before")(
        _split_commas
    )

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("responders")
    @classmethod
    def _responder_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not (_USER_ID.match(item) or _GROUP_ID.match(item)):
                raise ValueError(f"{item!r} is neither a user ID (U...) nor a user group ID (S...)")
        return value

    def channel_allowed(self, channel_id: str, channel_name: str | None) -> bool:
        """True when no allowlist is set, or the channel's ID or name matches an entry."""
        if not self.channels:
            return True
        candidates = [channel_id] + ([channel_name.lstrip("#")] if channel_name else [])
        return any(
            fnmatch.fnmatchcase(candidate, pattern.lstrip("#"))
            for pattern in self.channels
            for candidate in candidates
        )

    def user_allowed(self, user_id: str) -> bool:
        return not self.users or user_id in self.users

    @property
    def responder_users(self) -> list[str]:
        return [item for item in self.responders if _USER_ID.match(item)]

    @property
    def responder_groups(self) -> list[str]:
        return [item for item in self.responders if _GROUP_ID.match(item)]


@lru_cache(maxsize=1)
def get_bot_settings() -> BotSettings:
    return BotSettings()


class AlertSettings(BaseSettings):
    """The Alertmanager webhook receiver (bot.alerts; docs/alerts.md)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    token: SecretStr | None = Field(
        default=None,
        alias="BPFSLEUTH_ALERT_TOKEN",
        description="Bearer token Alertmanager sends (http_config.authorization); required.",
    )
    channel: str = Field(
        default="",
        alias="BPFSLEUTH_ALERT_CHANNEL",
        description="Channel (ID) for alert threads, unless the alert's channel label names one.",
    )
    channel_label: str = Field(default="slack_channel", alias="BPFSLEUTH_ALERT_CHANNEL_LABEL")
    host_label: str = Field(default="instance", alias="BPFSLEUTH_ALERT_HOST_LABEL")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, le=16 * 1024 * 1024, alias="BPFSLEUTH_ALERT_MAX_BYTES"
    )
    group_rate_per_min: int = Field(
        default=6,
        ge=1,
        le=600,
        alias="BPFSLEUTH_ALERT_GROUP_RATE",
        description="Notifications accepted per alert group per minute; more get 429.",
    )
    lock_wait_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        alias="BPFSLEUTH_ALERT_LOCK_WAIT_S",
        description="How long a notification waits while another of its group is handled; "
        "then 503, which Alertmanager retries.",
    )
