"""Worker-side configuration: every setting the worker reads from the environment is a field of a
model here (README lists every variable). `WorkerSettings` is read once per process
(`get_settings`); the others where they are used."""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelBackendName = Literal["auto", "offline", "anthropic", "openai"]
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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


class DistributedSettings(BaseSettings):
    """Knobs of the distributed loop; defaults suit production, tests shorten the timers."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    state_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, alias="BPFSLEUTH_STATE_TTL_S")
    task_soft_time_limit_s: int = Field(default=240, ge=5, alias="BPFSLEUTH_TASK_SOFT_LIMIT_S")
    task_time_limit_s: int = Field(default=300, ge=10, alias="BPFSLEUTH_TASK_HARD_LIMIT_S")
    visibility_timeout_s: int = Field(default=3600, ge=30, alias="BPFSLEUTH_VISIBILITY_TIMEOUT_S")
    redelivery_sweep_s: int = Field(
        default=30,
        ge=1,
        le=600,
        alias="BPFSLEUTH_REDELIVERY_SWEEP_S",
        description="Seconds between sweeps that redeliver tasks of dead workers.",
    )
    step_grace_s: float = Field(
        default=30.0,
        gt=0,
        alias="BPFSLEUTH_STEP_GRACE_S",
        description="A step's deadline is its longest probe plus its commands plus this grace.",
    )
    plan_expiry_margin_s: float = Field(
        default=5.0,
        ge=0,
        alias="BPFSLEUTH_PLAN_EXPIRY_MARGIN_S",
        description="run_plan expires this long after the step deadline (late = stale).",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, alias="BPFSLEUTH_HEARTBEAT_S")
    heartbeat_ttl_factor: float = Field(default=3.0, ge=1.5)
    scripted_replies: str | None = Field(
        default=None,
        alias="BPFSLEUTH_SCRIPTED_REPLIES",
        description="A JSON file of replies to replay instead of calling the model.",
    )
    stall_s: float | None = Field(
        default=None,
        gt=0,
        alias="BPFSLEUTH_STALL_S",
        description="An investigation deciding this long without a write lost its advance "
        "(a control worker died); default: the hard time limit + 60 s.",
    )
    deadline_scan_s: float = Field(default=0.5, gt=0, le=10, alias="BPFSLEUTH_DEADLINE_SCAN_S")
    control_concurrency: int = Field(default=2, ge=1, le=64, alias="BPFSLEUTH_CONTROL_CONCURRENCY")

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> DistributedSettings:
        if not self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise ValueError(
                "need soft time limit < hard time limit < visibility timeout, got "
                f"{self.task_soft_time_limit_s} / {self.task_time_limit_s} / "
                f"{self.visibility_timeout_s}"
            )
        return self

    @property
    def stall_after_s(self) -> float:
        return self.stall_s if self.stall_s is not None else self.task_time_limit_s + 60.0

    @property
    def heartbeat_ttl_s(self) -> int:
        return max(2, round(self.heartbeat_interval_s * self.heartbeat_ttl_factor))


class ApprovalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    wait_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        alias="BPFSLEUTH_APPROVAL_WAIT_S",
        description="How long a host waits for a responder's decision on one command.",
    )


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    port: int = Field(default=0, ge=0, le=65535, alias="BPFSLEUTH_METRICS_PORT")
    bind: str = Field(default="0.0.0.0", alias="BPFSLEUTH_METRICS_BIND")  # noqa: S104
    multiproc_dir: str = Field(default="", alias=MULTIPROC_ENV)


class SandboxSettings(BaseSettings):
    """Where the sandbox's exec helper is, when not in the usual places (worker.sandbox)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    helper: str = Field(default="", alias="BPFSLEUTH_SANDBOX_HELPER")


@lru_cache(maxsize=1)
def get_settings() -> WorkerSettings:
    return WorkerSettings()
