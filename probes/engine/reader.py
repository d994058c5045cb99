"""The Python half of a probe: turns its maps and ring-buffer events into a bounded result.

Each catalog probe has `reader.py` next to its C with a `Reader(ProbeReader)` class. The runner
creates it, calls `on_event` for each ring-buffer record of the rings named in `rings` (polled
without wakeups every 100 ms) and calls `collect` once at the end, with the bcc `BPF` object.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from probes.engine.summarise import MonotonicClock
from probes.models import Aggregates, ParamValue, ProbeFilters
from probes.spec import ProbeSpec


class RunInfo(BaseModel):
    """What a reader may know about its run."""

    probe: str
    params: dict[str, ParamValue] = Field(default_factory=dict)
    filters: ProbeFilters = Field(default_factory=ProbeFilters)
    duration_s: float = 0.0


class ReaderOutput(BaseModel):
    """What a reader contributes to the `ProbeResult`."""

    event_count: int = 0
    events: list[dict[str, Any]] = Field(default_factory=list)
    summary: str = ""
    aggregates: Aggregates = Field(default_factory=Aggregates)
    dropped: int = Field(default=0, description="Drops the reader saw itself (map full, ...).")


class ProbeReader:
    """Base class; override `rings`, `on_event` and `collect`."""

    rings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, run: RunInfo) -> None:
        self.run = run
        self.clock = MonotonicClock()

    def on_event(self, ring: str, event: Any) -> None:
        """One record of ring `ring`, already cast by bcc to the C struct it was sent as."""

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        raise NotImplementedError


def load_reader(spec: ProbeSpec, run: RunInfo) -> ProbeReader:
    module = importlib.import_module(f"probes.catalog.{spec.name}.{spec.reader}")
    reader_class = module.Reader
    if not (isinstance(reader_class, type) and issubclass(reader_class, ProbeReader)):
        raise TypeError(f"probes.catalog.{spec.name}.{spec.reader}.Reader is not a ProbeReader")
    reader: ProbeReader = reader_class(run)
    return reader
