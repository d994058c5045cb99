"""Paths the tests read or run: the repository, the installed CLI, the catalog, the seeds."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BPFSLEUTH = Path(sys.executable).parent / "bpfsleuth"
CATALOG = REPO / "probes" / "catalog"
SEEDS = REPO / "tests" / "fixtures" / "seed_004"
GOLDEN = REPO / "tests" / "golden"


def example_json(probe: str) -> Path:
    """The catalog probe's `example.json` (a real result, refreshed from live tests)."""
    return CATALOG / probe / "example.json"
