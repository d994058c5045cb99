"""The result budget: one probe's whole result stays a few hundred tokens, whatever it saw.

Readers already aggregate; this is the one place that guarantees the size. `fit_to_budget`
measures the result as JSON and, while it is over `RESULT_BUDGET_CHARS`, trims step by step
(top-N lists, histogram buckets, samples, long strings), keeping the biggest rows, the fullest
buckets and the summary, and says in a warning what it cut. `compact_attach_points` writes a
family of syscall tracepoints in one short form.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from probes.engine.summarise import MAX_HIST_BUCKETS, MAX_SAMPLES, clip, fullest_buckets
from probes.models import Aggregates, ProbeResult, TopEntry

RESULT_BUDGET_CHARS = 2900  # the contract is < 3,000 characters of JSON; keep a margin
ATTACH_POINTS_SHOWN = 4
_SYSCALL_TP = re.compile(r"^(tracepoint:syscalls):sys_(enter|exit)_(\w+)$")


@dataclass
class _Cut:
    """How far a result is trimmed: rows kept per top-N table, buckets per histogram, ..."""

    rows: dict[str, int]
    buckets: int = MAX_HIST_BUCKETS
    samples: int = MAX_SAMPLES
    stacks: int = 20
    text: int = 10_000  # longest string in a sample, label or key

    def note(self) -> str:
        rows = max(self.rows.values(), default=0)
        return (
            f"trimmed to fit {RESULT_BUDGET_CHARS:,} characters: up to {rows} rows per table, "
            f"{self.buckets} histogram buckets, {self.samples} samples"
            + (f", strings of {self.text}" if self.text < 10_000 else "")
        )


def compact_attach_points(labels: list[str]) -> list[str]:
    """Syscall tracepoints as `tracepoint:syscalls:sys_{enter,exit}_{read,write}` when a probe
    uses more than ATTACH_POINTS_SHOWN of them; every other label as it is. `expand_attach_points`
    gives the full list back."""
    syscalls = [label for label in labels if _SYSCALL_TP.match(label)]
    if len(syscalls) <= ATTACH_POINTS_SHOWN:
        return list(labels)
    phases: defaultdict[str, set[str]] = defaultdict(set)
    for label in syscalls:
        match = _SYSCALL_TP.match(label)
        assert match is not None
        phases[match.group(3)].add(match.group(2))
    by_phases: defaultdict[tuple[str, ...], list[str]] = defaultdict(list)
    for name in sorted(phases):
        by_phases[tuple(sorted(phases[name]))].append(name)
    compact = []
    for phase_set, names in sorted(by_phases.items(), key=lambda item: (-len(item[0]), item[0])):
        phase = phase_set[0] if len(phase_set) == 1 else "{" + ",".join(phase_set) + "}"
        name = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
        compact.append(f"tracepoint:syscalls:sys_{phase}_{name}")
    others = [label for label in labels if not _SYSCALL_TP.match(label)]
    return others + compact


def expand_attach_points(labels: list[str]) -> list[str]:
    """Every attach point of a (possibly compacted) `attach_points` list, one per entry."""
    out: list[str] = []
    for label in labels:
        out.extend(_expand(label))
    return out


def _expand(label: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", label)
    if match is None:
        return [label]
    head, tail = label[: match.start()], label[match.end() :]
    return [item for part in match.group(1).split(",") for item in _expand(head + part + tail)]


def result_size(result: ProbeResult) -> int:
    return len(result.model_dump_json())


def fit_to_budget(result: ProbeResult, budget: int = RESULT_BUDGET_CHARS) -> ProbeResult:
    """`result` as it is when it fits `budget` characters of JSON, else trimmed step by step
    (samples first, then histogram buckets, long strings and the longest tables' last rows)
    until it does; a warning says how far."""
    if result_size(result) <= budget:
        return result
    cut = _Cut(rows={name: len(rows) for name, rows in result.aggregates.top.items()})
    cut.samples = min(cut.samples, len(result.events))
    trimmed = result
    for _ in _steps(result, cut):
        trimmed = _trimmed(result, cut)
        if result_size(trimmed) <= budget:
            return trimmed
    return _last_resort(trimmed, budget)


def _steps(result: ProbeResult, cut: _Cut) -> Iterator[None]:
    """Each yield leaves `cut` one notch tighter, least useful parts first."""
    yield  # the attach point short form alone may do
    for samples, buckets, text, rows in (
        (3, 8, 10_000, 5),
        (2, 6, 160, 4),
        (1, 6, 120, 3),
        (0, 4, 96, 3),
        (0, 4, 72, 2),
        (0, 3, 56, 2),
        (0, 2, 40, 1),
    ):
        while cut.samples > samples:
            cut.samples -= 1
            yield
        if cut.buckets > buckets:
            cut.buckets = buckets
            yield
        if cut.text > text:
            cut.text = text
            yield
        cut.stacks = max(3, cut.stacks - 4)
        while (longest := _longest_table(result, cut, rows)) is not None:
            cut.rows[longest] -= 1
            yield


def _longest_table(result: ProbeResult, cut: _Cut, floor: int) -> str | None:
    """The table above `floor` rows whose kept rows take the most characters."""
    sizes = {
        name: sum(len(row.model_dump_json()) for row in rows[: cut.rows[name]])
        for name, rows in result.aggregates.top.items()
        if cut.rows[name] > floor
    }
    return max(sizes, key=lambda name: sizes[name]) if sizes else None


def _trimmed(result: ProbeResult, cut: _Cut) -> ProbeResult:
    aggregates = result.aggregates
    trimmed = Aggregates(
        totals=dict(aggregates.totals),
        top={
            name: [_clipped_row(row, cut.text) for row in rows[: cut.rows[name]]]
            for name, rows in aggregates.top.items()
        },
        latency={
            name: fullest_buckets(stats, cut.buckets) for name, stats in aggregates.latency.items()
        },
        folded_stacks=[clip_middle(line, cut.text * 4) for line in aggregates.folded_stacks][
            : cut.stacks
        ],
    )
    return result.model_copy(
        update={
            "aggregates": trimmed,
            "events": [_clipped(event, cut.text) for event in result.events[: cut.samples]],
            "warnings": [*result.warnings, cut.note()],
        }
    )


def _fewer_attach_points(labels: list[str]) -> list[str]:
    if len(labels) <= ATTACH_POINTS_SHOWN:
        return labels
    rest = len(labels) - (ATTACH_POINTS_SHOWN - 1)
    return [*labels[: ATTACH_POINTS_SHOWN - 1], f"+{rest} more"]


def clip_middle(text: str, limit: int) -> str:
    """`text` cut to `limit` characters in its middle: a path keeps its start and its file."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + "…" + text[len(text) - (limit - head - 1) :]


def _clipped_row(row: TopEntry, limit: int) -> TopEntry:
    labels = {
        name: clip_middle(value, limit) if isinstance(value, str) else value
        for name, value in row.labels.items()
    }
    return row.model_copy(update={"key": clip_middle(row.key, max(limit, 32)), "labels": labels})


def _clipped(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return clip_middle(value, limit)
    if isinstance(value, dict):
        return {key: _clipped(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_clipped(item, limit) for item in value[:8]]
    return value


def _last_resort(result: ProbeResult, budget: int) -> ProbeResult:
    """Nothing but the figures: totals, percentiles without histograms, the summary."""
    aggregates = result.aggregates.model_copy(
        update={
            "top": {name: rows[:1] for name, rows in result.aggregates.top.items()},
            "latency": {
                name: fullest_buckets(stats, 0) for name, stats in result.aggregates.latency.items()
            },
            "folded_stacks": result.aggregates.folded_stacks[:1],
        }
    )
    last = result.model_copy(
        update={
            "aggregates": aggregates,
            "events": [],
            "attach_points": _fewer_attach_points(result.attach_points),
            "summary": clip(result.summary, 600),
            "warnings": [clip(w, 160) for w in result.warnings[-3:]],
        }
    )
    if result_size(last) > budget:
        last = last.model_copy(update={"aggregates": Aggregates(totals=aggregates.totals)})
    return last
