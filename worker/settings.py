"""Worker-side configuration, read from the environment once (README lists every variable)."""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelBackendName = Literal["auto", "offline", "anthropic", "openai"]
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"


class WorkerSettings(BaseSettings):
    """Every knob has a default that works on one machine with no services configured."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    redis_url: str = Field(default="redis://localhost:6379/0", alias="REDIS_URL")
    host_name: str = Field(default_factory=platform.node, alias="BPFSLEUTH_HOST")
    model_backend: ModelBackendName = Field(default="auto", alias="BPFSLEUTH_MODEL")
    anthropic_api_key: SecretStr | None = Field(default=None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, alias="ANTHROPIC_BASE_URL")
    anthropic_model: str = Field(default=DEFAULT_ANTHROPIC_MODEL, alias="BPFSLEUTH_ANTHROPIC_MODEL")
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    openai_model: str = Field(default="gpt-4o-mini", alias="BPFSLEUTH_OPENAI_MODEL")
    max_iterations: int = Field(default=6, ge=1, le=20, alias="BPFSLEUTH_MAX_ITERATIONS")
    max_wall_s: float = Field(default=600.0, gt=0, alias="BPFSLEUTH_MAX_WALL_S")
    max_model_tokens: int = Field(default=200_000, gt=0, alias="BPFSLEUTH_MAX_TOKENS")
    command_timeout_s: float = Field(default=10.0, gt=0, le=60, alias="BPFSLEUTH_COMMAND_TIMEOUT_S")
    command_output_bytes: int = Field(
        default=64 * 1024, ge=1024, le=1024 * 1024, alias="BPFSLEUTH_COMMAND_OUTPUT_BYTES"
    )
    precompile: bool = Field(
        default=True,
        alias="BPFSLEUTH_PRECOMPILE",
        description="host workers compile the probe catalog at start (about 13 CPU-s and "
        "150 MiB per probe process, per pool process) so a first plan attaches at once",
    )
    allowed_destinations: str = Field(
        default="",
        alias="BPFSLEUTH_ALLOWED_DESTINATIONS",
        description="hosts, .suffixes, IPs and CIDRs network tools may reach unattended "
        "(comma-separated; loopback always); see docs/policy.md",
    )

    def resolved_backend(self) -> Literal["offline", "anthropic", "openai"]:
        """`auto` means Claude when a key is configured, the offline planner otherwise."""
        if self.model_backend != "auto":
            return self.model_backend
        if self.anthropic_api_key is not None:
            return "anthropic"
        if self.openai_base_url:
            return "openai"
        return "offline"


class FlowSettings(BaseSettings):
    """Where operators' flows live; read on each load (flows reload when a file changes)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    flow_path: str = Field(
        default="",
        alias="BPFSLEUTH_FLOW_PATH",
        description="folders of operator flows (*.yaml), separated by ':'",
    )


class SlackEnv(BaseSettings):
    """The bot's Slack credentials as the worker's doctor sees them: set or not (the bot reads
    them itself, bot.settings)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")

    def present(self) -> list[str]:
        """The names of the variables that are set and not empty."""
        fields = type(self).model_fields
        return [
            str(fields[name].alias)
            for name in ("bot_token", "app_token", "signing_secret")
            if (value := getattr(self, name)) is not None and value.get_secret_value()
        ]


@lru_cache(maxsize=1)
def get_settings() -> WorkerSettings:
    return WorkerSettings()
