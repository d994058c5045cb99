"""The probe catalog: one folder per probe.

Each folder holds `probe.yaml`, `probe.bpf.c`, `reader.py` and `example.json`.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path

from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict

from probes.custom.loader import BUILTIN, load_custom_probes, probe_path
from probes.settings import probe_settings
from probes.spec import ProbeSpec, load_spec

CATALOG_DIR = Path(__file__).resolve().parent
RECHECK_S = 10.0  # a custom catalog is reused this long (approvals may live in Redis)


class Catalog(BaseModel):
    """Every valid probe of the catalog, by name, plus the folders that failed to load and why."""

    model_config = ConfigDict(frozen=True)

    probes: dict[str, ProbeSpec]
    broken: dict[str, str] = {}
    blocked: dict[str, str] = {}  # valid custom probes that may not run (unapproved), and why
    sources: dict[str, str] = {}  # probe -> "builtin" or the BPFSLEUTH_PROBE_PATH entry

    def source_of(self, name: str) -> str:
        return self.sources.get(name, "builtin")

    def names(self) -> list[str]:
        return sorted(self.probes)

    def get(self, name: str) -> ProbeSpec | None:
        return self.probes.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.probes


def _probe_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "probe.yaml").exists())


def load_catalog_from(root: Path) -> Catalog:
    probes: dict[str, ProbeSpec] = {}
    broken: dict[str, str] = {}
    for directory in _probe_dirs(root):
        try:
            probes[directory.name] = load_spec(directory)
        except Exception as exc:  # a broken probe must not hide the others
            broken[directory.name] = f"{type(exc).__name__}: {exc}"
    return Catalog(probes=probes, broken=broken)


@lru_cache(maxsize=1)
def load_builtin_catalog() -> Catalog:
    """The catalog shipped with the package (read once per process)."""
    return load_catalog_from(CATALOG_DIR)


def load_catalog() -> Catalog:
    """The built-in catalog plus the custom probes of BPFSLEUTH_PROBE_PATH (`probes.custom`)."""
    return with_custom_probes(load_builtin_catalog())


# The last merged catalog, by the fingerprint of the probe path, for RECHECK_S.
_CACHE: TTLCache[str, Catalog] = TTLCache(maxsize=1, ttl=RECHECK_S)
_CACHE_LOCK = threading.Lock()


def _fingerprint(builtin: Catalog) -> str:
    """Changes when any file under the probe path (or an approvals file) changes."""
    parts: list[str] = [probe_settings().probe_path, ",".join(builtin.names())]
    for root in probe_path():
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                parts.append(f"{path}:{stat.st_mtime_ns}:{stat.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def with_custom_probes(builtin: Catalog) -> Catalog:
    """The built-in catalog plus the runnable custom probes; the rest listed as broken/blocked."""
    if not probe_path():
        return builtin
    key = _fingerprint(builtin)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    probes = dict(builtin.probes)
    broken = dict(builtin.broken)
    blocked = dict(builtin.blocked)
    sources = dict(builtin.sources) or dict.fromkeys(builtin.probes, BUILTIN)
    for probe in load_custom_probes(set(builtin.probes)):
        label = probe.name if probe.name not in probes else f"{probe.name} ({probe.directory})"
        if not probe.valid or probe.spec is None:
            broken[label] = "; ".join(probe.errors)
            sources[label] = str(probe.root)
            continue
        sources[probe.name] = str(probe.root)
        if probe.runnable:
            probes[probe.name] = probe.spec
        else:
            assert probe.approval is not None
            blocked[probe.name] = probe.approval.reason
    catalog = builtin.model_copy(
        update={"probes": probes, "broken": broken, "blocked": blocked, "sources": sources}
    )
    with _CACHE_LOCK:
        _CACHE[key] = catalog
    return catalog
