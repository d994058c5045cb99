"""The probe catalog: one folder per probe.

Each folder holds `probe.yaml`, `probe.bpf.c`, `reader.py` and `example.json`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from probes.spec import ProbeSpec, load_spec

CATALOG_DIR = Path(__file__).resolve().parent


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
    """The built-in catalog plus the custom probes of BPFSLEUTH_PROBE_PATH (`probes.custom.loader`)."""
    from probes.custom.loader import with_custom_probes

    return with_custom_probes(load_builtin_catalog())
