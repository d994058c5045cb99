"""Read-only views of tracefs: does a tracepoint exist, which fields does its format have."""

from __future__ import annotations

import re
from functools import lru_cache

from probes.capabilities import TRACEFS

IDENT_RE = re.compile(r"^[a-z0-9_]+$")
_FIELD_RE = re.compile(r"field:[^;]*?([A-Za-z_][A-Za-z0-9_]*)(?:\[\d*\])?;")


def tracepoint_exists(category: str, name: str) -> bool:
    """True only for well-formed identifiers naming an existing tracepoint."""
    if not (IDENT_RE.match(category) and IDENT_RE.match(name)):
        return False
    return (TRACEFS / "events" / category / name / "format").is_file()


@lru_cache(maxsize=512)
def tracepoint_fields(category: str, name: str) -> frozenset[str]:
    if not tracepoint_exists(category, name):
        return frozenset()
    text = (TRACEFS / "events" / category / name / "format").read_text()
    return frozenset(m.group(1) for m in _FIELD_RE.finditer(text))


_OFFSET_RE = re.compile(
    r"field:[^;]*?([A-Za-z_][A-Za-z0-9_]*)(?:\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);"
)


@lru_cache(maxsize=512)
def tracepoint_offsets(category: str, name: str) -> dict[str, tuple[int, int]]:
    """field -> (offset, size) from the format file, for programs that read the record raw."""
    if not tracepoint_exists(category, name):
        return {}
    text = (TRACEFS / "events" / category / name / "format").read_text()
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _OFFSET_RE.finditer(text)}


def all_tracepoints() -> list[str]:
    """Every tracepoint as `category/name` (for suggestions)."""
    events = TRACEFS / "events"
    if not events.is_dir():
        return []
    out = []
    for category in events.iterdir():
        if category.is_dir():
            out += [
                f"{category.name}/{p.name}" for p in category.iterdir() if (p / "format").is_file()
            ]
    return sorted(out)
