"""Settings of the MCP server (environment variables, like every bpfsleuth setting)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_audit_log() -> Path:
    return Path.home() / ".local" / "state" / "bpfsleuth" / "mcp-audit.jsonl"


class McpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    audit_log: Path = Field(
        default_factory=_default_audit_log,
        alias="BPFSLEUTH_MCP_AUDIT_LOG",
        description="JSON-lines audit file used when Redis (REDIS_URL) cannot be reached.",
    )
    concurrent_runs: int = Field(
        default=2,
        ge=1,
        le=8,
        alias="BPFSLEUTH_MCP_CONCURRENCY",
        description="Probe, flow and command runs at once; more calls wait their turn.",
    )
    redis_probe_timeout_s: float = Field(
        default=1.0, gt=0, le=10, alias="BPFSLEUTH_MCP_REDIS_TIMEOUT_S"
    )
    flow_timeout_s: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        alias="BPFSLEUTH_MCP_FLOW_TIMEOUT_S",
        description="How long a flow on another host (through Celery) may take.",
    )
    token: SecretStr | None = Field(
        default=None,
        alias="BPFSLEUTH_MCP_TOKEN",
        description="Bearer token every streamable-HTTP request must carry (`--http` needs it).",
    )
