"""Every environment variable probes/ reads goes through ProbeSettings, read at use (not at
import), so a changed variable is seen by the next call."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from probes import capabilities
from probes.custom import approval, loader
from probes.settings import DEFAULT_CACHE_DIR, probe_settings


def test_the_cache_dir_is_read_when_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BPFSLEUTH_CACHE_DIR", raising=False)
    assert probe_settings().cache_dir == DEFAULT_CACHE_DIR
    where = tmp_path / secrets.token_hex(4)
    monkeypatch.setenv("BPFSLEUTH_CACHE_DIR", str(where))
    assert capabilities._cache_path("6.1.0").parent == where
    assert loader._compile_cache_dir() == where / "compile"


def test_probe_path_redis_and_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("BPFSLEUTH_PROBE_PATH", f"{first}::{second}:")
    assert loader.probe_path() == [first, second]
    url = f"redis://127.0.0.1:{secrets.randbelow(10_000) + 20_000}/0"
    monkeypatch.setenv("REDIS_URL", url)
    assert approval._redis_url() == url
    monkeypatch.delenv("REDIS_URL")
    assert approval._redis_url() is None
    name = f"host-{secrets.token_hex(3)}"
    monkeypatch.setenv("BPFSLEUTH_HOST", name)
    assert probe_settings().host() == name
