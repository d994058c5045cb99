"""Probe-side configuration: every environment variable `probes/` reads, in one model.

Read at each use (`probe_settings()`), not at import: a test or an operator that changes
`BPFSLEUTH_PROBE_PATH` sees the change at the next catalog load, as before.
"""

from __future__ import annotations

import platform
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CACHE_DIR = Path("/var/cache/bpfsleuth")


class ProbeSettings(BaseSettings):
    """What the probe engine takes from its environment; each default works on one machine."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    cache_dir: Path = Field(
        default=DEFAULT_CACHE_DIR,
        alias="BPFSLEUTH_CACHE_DIR",
        description="measured capabilities and compile checks, per kernel",
    )
    host_name: str = Field(default="", alias="BPFSLEUTH_HOST")
    probe_path: str = Field(
        default="",
        alias="BPFSLEUTH_PROBE_PATH",
        description="colon-separated folders of custom probes",
    )
    redis_url: str = Field(
        default="", alias="REDIS_URL", description="where fleet-wide probe approvals are kept"
    )
    sudo_user: str = Field(
        default="", alias="SUDO_USER", description="who approves, when run under sudo"
    )
    compile_budget_s: float | None = Field(
        default=None,
        alias="BPFSLEUTH_PROBE_COMPILE_BUDGET_S",
        description="seconds a probe may take to compile and attach (default 30; slow guests more)",
    )
    pythonpath: str = Field(
        default="", alias="PYTHONPATH", description="kept behind the package root for children"
    )

    def host(self) -> str:
        return self.host_name or platform.node()

    def probe_dirs(self) -> list[Path]:
        """The directories of the probe path, in order (empty entries ignored)."""
        return [Path(p).expanduser() for p in self.probe_path.split(":") if p.strip()]


def probe_settings() -> ProbeSettings:
    return ProbeSettings()
