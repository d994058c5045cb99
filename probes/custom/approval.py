"""Review once, run everywhere: who approved which exact content of a custom probe.

A custom probe (see `probes.custom.loader`) runs only when the sha256 of its folder's content (every
file, sorted by relative path) has been approved by a person. Approvals are kept in
`approvals.json` in the folder that holds the probe folders (one per `BPFSLEUTH_PROBE_PATH`
entry), or in Redis (`bpfsleuth:probe-approvals`) for a fleet. Changing any file changes the
hash, and the probe is refused until someone approves the new content. Built-in probes are
approved by being part of the release.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from probes.settings import probe_settings

APPROVALS_FILE = "approvals.json"
REDIS_KEY = "bpfsleuth:probe-approvals"
REDIS_TIMEOUT_S = 0.5
SKIPPED_DIRS = frozenset({"__pycache__"})

Where = Literal["file", "redis"]


class Approval(BaseModel):
    """One approval: this probe, this exact content, by whom, with what it was shown."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    by: str = Field(min_length=1, max_length=200)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    overhead: str = ""
    reads_user_memory: bool = False
    max_duration_s: float = 0.0


class ApprovalFile(BaseModel):
    approvals: dict[str, Approval] = Field(default_factory=dict)


class ApprovalStatus(BaseModel):
    """Whether a custom probe's current content may run, and why (fit for the model and user)."""

    approved: bool
    sha256: str
    reason: str
    approval: Approval | None = None
    where: Where | None = None


def content_files(directory: Path) -> list[Path]:
    """Every file of a probe folder (recursively, `__pycache__` left out), sorted by path."""
    files = []
    for path in directory.rglob("*"):
        if any(part in SKIPPED_DIRS for part in path.relative_to(directory).parts):
            continue
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def content_hash(directory: Path) -> str:
    """sha256 over (relative name, size, bytes) of every file in the folder, sorted by name."""
    digest = hashlib.sha256()
    for path in content_files(directory):
        data = path.read_bytes()
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


def approvals_path(directory: Path) -> Path:
    """`approvals.json` in the folder that holds the probe folder."""
    return directory.resolve().parent / APPROVALS_FILE


def read_file_approvals(path: Path) -> ApprovalFile:
    if not path.exists():
        return ApprovalFile()
    try:
        return ApprovalFile.model_validate_json(path.read_text())
    except (ValidationError, ValueError):
        return ApprovalFile()


def write_file_approval(path: Path, approval: Approval) -> None:
    data = read_file_approvals(path)
    data.approvals[approval.name] = approval
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(data.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)


def _redis_url() -> str | None:
    return probe_settings().redis_url or None


def read_redis_approval(name: str, url: str | None = None) -> Approval | None:
    """The fleet's approval of `name`, or None (no REDIS_URL, unreachable, none recorded)."""
    url = url or _redis_url()
    if url is None:
        return None
    import redis

    with contextlib.suppress(redis.RedisError, OSError, ValidationError, ValueError):
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        raw = client.hget(REDIS_KEY, name)
        if raw is not None:
            return Approval.model_validate_json(raw)
    return None


def write_redis_approval(approval: Approval, url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S * 4, socket_timeout=REDIS_TIMEOUT_S * 4
    )
    client.hset(REDIS_KEY, approval.name, approval.model_dump_json())


def approval_status(name: str, directory: Path, sha256: str | None = None) -> ApprovalStatus:
    """Is the folder's current content approved, here (approvals.json) or for the fleet?"""
    current = sha256 or content_hash(directory)
    found: list[tuple[Approval, Where]] = []
    local = read_file_approvals(approvals_path(directory)).approvals.get(name)
    if local is not None:
        found.append((local, "file"))
    if local is None or local.sha256 != current:
        fleet = read_redis_approval(name)
        if fleet is not None:
            found.append((fleet, "redis"))
    for approval, where in found:
        if approval.sha256 == current:
            return ApprovalStatus(
                approved=True,
                sha256=current,
                reason=f"approved by {approval.by} at {approval.at:%Y-%m-%d %H:%M} UTC ({where})",
                approval=approval,
                where=where,
            )
    hint = f"run `bpfsleuth probes approve {name}` after reviewing {directory}"
    if found:
        approval, where = found[0]
        return ApprovalStatus(
            approved=False,
            sha256=current,
            reason=f"custom probe {name} changed since {approval.by} approved it "
            f"(approved sha256 {approval.sha256[:12]}, now {current[:12]}); {hint}",
            approval=approval,
            where=where,
        )
    return ApprovalStatus(
        approved=False,
        sha256=current,
        reason=f"custom probe {name} is not approved (sha256 {current[:12]}); {hint}",
    )


def record_approval(
    approval: Approval, directory: Path, *, fleet_url: str | None = None
) -> tuple[Where, str]:
    """Store `approval` in the fleet's Redis (when given) or next to the probe folder."""
    if fleet_url:
        write_redis_approval(approval, fleet_url)
        return "redis", REDIS_KEY
    path = approvals_path(directory)
    write_file_approval(path, approval)
    return "file", str(path)
