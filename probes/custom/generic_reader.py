"""The reader of custom probes: no Python from the probe folder, only what its YAML declares.

A custom probe lists its BPF tables under `tables:` in `probe.yaml`:

- `counter`: a `BPF_HASH` whose value is a count (a scalar, or the struct field named by
  `value`); reported as a top-N table (`aggregates.top[<name>]`) and a total;
- `histogram`: a `BPF_HISTOGRAM` indexed by `bpf_log2l(v)`; reported as percentiles
  (`aggregates.latency[<name>]`) in `base_unit` -> `unit`;
- `events`: a `BPF_RINGBUF_OUTPUT` of low-rate records; counted, a few kept as samples, and
  grouped by the `key` fields into a top-N table.

Keys and records are read through ctypes field by field (strings cut at the first NUL), so a
custom probe's output is as bounded as a built-in one's, without running its author's code.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from probes.engine.reader import ProbeReader, ReaderOutput, RunInfo
from probes.engine.summarise import latency_from_log2, log2_buckets, plural, top_entries
from probes.models import Aggregates, TopEntry

Unit = Literal["ns", "us", "ms", "s", "bytes", "count"]
TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_SAMPLES = 5
MAX_ARRAY_ITEMS = 16
MAX_TEXT = 200


class TableSpec(BaseModel):
    """One BPF table the generic reader turns into output."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The table's name in the C (BPF_HASH(name, ...)).")
    kind: Literal["counter", "histogram", "events"]
    description: str = ""
    key: list[str] = Field(
        default_factory=list,
        description="counter: key struct fields that make the row's label (all when empty); "
        "events: fields to group records by.",
    )
    value: str | None = Field(default=None, description="counter: the struct field to count.")
    base_unit: Unit = "count"
    unit: Unit = "count"
    top: int = Field(default=5, ge=1, le=20)

    @field_validator("name", "value")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not TABLE_RE.match(value):
            raise ValueError(f"{value!r} is not a C identifier")
        return value

    @field_validator("key")
    @classmethod
    def _identifiers(cls, value: list[str]) -> list[str]:
        for item in value:
            if not TABLE_RE.match(item):
                raise ValueError(f"key field {item!r} is not a C identifier")
        return value


def plain(value: Any) -> Any:
    """A bcc/ctypes value as plain JSON data (structs as dicts, char arrays as text)."""
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")[:MAX_TEXT]
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, ctypes.Array):
        return [plain(item) for item in list(value)[:MAX_ARRAY_ITEMS]]
    fields = getattr(value, "_fields_", None)
    if fields is not None:
        return {field[0]: plain(getattr(value, field[0])) for field in fields}
    if hasattr(value, "value"):
        return plain(value.value)
    return str(value)[:MAX_TEXT]


def _label(data: Any, fields: list[str]) -> tuple[str, dict[str, str | int | float]]:
    """A row's key text and its labels, from the chosen fields of a key or record."""
    if not isinstance(data, dict):
        return str(data), {}
    chosen = [f for f in fields if f in data] or list(data)
    scalars = {k: v for k, v in data.items() if isinstance(v, str | int | float)}
    if len(chosen) == 1:
        return str(data[chosen[0]]), {k: v for k, v in scalars.items() if k != chosen[0]}
    return " ".join(f"{k}={data[k]}" for k in chosen), {
        k: v for k, v in scalars.items() if k not in chosen
    }


def _count(value: Any, field: str | None) -> int:
    data = plain(value)
    if isinstance(data, dict):
        picked = data.get(field) if field else next(iter(data.values()), 0)
        return int(picked) if isinstance(picked, int | float) else 0
    return int(data) if isinstance(data, int | float) else 0


class GenericReader(ProbeReader):
    """Reads the tables a custom probe's YAML lists."""

    tables: ClassVar[tuple[TableSpec, ...]] = ()

    def __init__(self, run: RunInfo) -> None:
        super().__init__(run)
        self.received: Counter[str] = Counter()
        self.groups: dict[str, Counter[str]] = {}
        self.group_labels: dict[str, dict[str, dict[str, str | int | float]]] = {}
        self.samples: list[dict[str, Any]] = []

    def on_event(self, ring: str, event: Any) -> None:
        self.received[ring] += 1
        data = plain(event)
        if len(self.samples) < MAX_SAMPLES and isinstance(data, dict):
            self.samples.append({"table": ring, **data})
        table = next(t for t in self.tables if t.name == ring)
        key, labels = _label(data, table.key)
        self.groups.setdefault(ring, Counter())[key] += 1
        self.group_labels.setdefault(ring, {})[key] = labels

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        aggregates = Aggregates()
        parts: list[str] = []
        event_count = 0
        for table in self.tables:
            if table.kind == "events":
                count = self.received[table.name]
                event_count += count
                aggregates.totals[table.name] = count
                groups = self.groups.get(table.name, Counter())
                rows = top_entries(
                    groups, limit=table.top, labels=self.group_labels.get(table.name, {})
                )
                aggregates.top[table.name] = rows
                parts.append(_describe(table.name, plural(count, "record"), rows))
            elif table.kind == "counter":
                counts: Counter[str] = Counter()
                labels: dict[str, dict[str, str | int | float]] = {}
                for key, value in bpf[table.name].items():
                    text, extra = _label(plain(key), table.key)
                    counts[text] += _count(value, table.value)
                    labels[text] = extra
                total = sum(counts.values())
                event_count += total
                aggregates.totals[table.name] = total
                rows = top_entries(counts, limit=table.top, labels=labels)
                aggregates.top[table.name] = rows
                parts.append(_describe(table.name, f"{total} in {len(counts)} keys", rows))
            else:
                stats = latency_from_log2(
                    log2_buckets(bpf[table.name]), base_unit=table.base_unit, unit=table.unit
                )
                aggregates.latency[table.name] = stats
                if not event_count:
                    event_count = stats.count
                parts.append(
                    f"{table.name}: {stats.count} values, p50 {stats.p50} p99 {stats.p99} "
                    f"{stats.unit}"
                    if stats.count
                    else f"{table.name}: no values"
                )
        summary = f"{self.run.probe} in {elapsed_s:.1f}s: " + "; ".join(parts)
        return ReaderOutput(
            event_count=event_count,
            events=self.samples,
            summary=summary[:600],
            aggregates=aggregates,
        )


def _describe(name: str, amount: str, rows: list[TopEntry]) -> str:
    if not rows:
        return f"{name}: {amount}"
    head = ", ".join(f"{row.key} ({row.count})" for row in rows[:3])
    return f"{name}: {amount}, top {head}"


def make_reader(tables: list[TableSpec], run: RunInfo) -> GenericReader:
    """A reader for these tables; ring buffers are the `events` tables."""
    reader_class = type(
        "CustomProbeReader",
        (GenericReader,),
        {
            "tables": tuple(tables),
            "rings": tuple(t.name for t in tables if t.kind == "events"),
        },
    )
    reader: GenericReader = reader_class(run)
    return reader
