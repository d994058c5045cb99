"""Every result sent to the model is bounded and redacted before it leaves the host.

Command output is cut to a number of characters with a visible marker; a probe result is trimmed
(samples, top-N rows, histograms, stacks) until its compact JSON fits a few hundred tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from worker.protocol import CommandResult, EbpfResult

CUT_MARKER = "\n[... {cut} characters cut ...]\n"


class ResultLimits(BaseModel):
    stdout_chars: int = 3000
    stderr_chars: int = 600
    probe_json_chars: int = 1600
    probe_events: int = 3
    probe_top_rows: int = 5
    probe_string_chars: int = 200
    folded_stacks: int = 5


def cut(text: str, limit: int) -> tuple[str, bool]:
    """`text` within `limit` characters: its head and tail around a marker saying how much went."""
    if len(text) <= limit:
        return text, False
    keep = max(limit - len(CUT_MARKER.format(cut=len(text))), 0)
    head = keep * 2 // 3
    tail = keep - head
    removed = len(text) - head - tail
    return text[:head] + CUT_MARKER.format(cut=removed) + (text[-tail:] if tail else ""), True


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_map_strings(k, change): _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return value


def bound_command(
    result: CommandResult, limits: ResultLimits, redact: Callable[[str], str]
) -> CommandResult:
    stdout, cut_out = cut(redact(result.stdout), limits.stdout_chars)
    stderr, cut_err = cut(redact(result.stderr), limits.stderr_chars)
    return result.model_copy(
        update={
            "command": redact(result.command),
            "stdout": stdout,
            "stderr": stderr,
            "truncated": result.truncated or cut_out or cut_err,
        }
    )


def compact_json(result: EbpfResult) -> str:
    return json.dumps(
        result.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"), default=str
    )


def _drop_histograms(data: dict[str, Any]) -> None:
    for stats in data["aggregates"]["latency"].values():
        stats["histogram"] = []


def _keep_events(data: dict[str, Any], count: int) -> None:
    data["events"] = data["events"][:count]


def _keep_top_rows(data: dict[str, Any], count: int) -> None:
    top = data["aggregates"]["top"]
    data["aggregates"]["top"] = {key: rows[:count] for key, rows in top.items()}


def _keep_two_stacks(data: dict[str, Any]) -> None:
    data["aggregates"]["folded_stacks"] = data["aggregates"]["folded_stacks"][:2]


def bound_probe(
    result: EbpfResult, limits: ResultLimits, redact: Callable[[str], str]
) -> EbpfResult:
    """Redact every string, then trim until the compact JSON fits `limits.probe_json_chars`."""

    def short(text: str) -> str:
        return cut(redact(text), limits.probe_string_chars)[0]

    data = _map_strings(result.model_dump(mode="json"), short)
    long_text = limits.probe_string_chars * 3  # summaries and errors: what the model reads
    data["summary"] = cut(redact(result.summary), long_text)[0]
    if result.error is not None:
        data["error"] = cut(redact(result.error), long_text)[0]
    data["warnings"] = [cut(redact(w), long_text)[0] for w in result.warnings[:5]]
    data["events"] = data["events"][: limits.probe_events]
    aggregates = data["aggregates"]
    aggregates["top"] = {k: rows[: limits.probe_top_rows] for k, rows in aggregates["top"].items()}
    aggregates["folded_stacks"] = aggregates["folded_stacks"][: limits.folded_stacks]
    bounded = EbpfResult.model_validate(data)
    trims: list[Callable[[dict[str, Any]], None]] = [
        _drop_histograms,
        lambda d: _keep_events(d, 1),
        lambda d: _keep_top_rows(d, 3),
        _keep_two_stacks,
        lambda d: _keep_events(d, 0),
        lambda d: _keep_top_rows(d, 1),
    ]
    for trim in trims:
        if len(compact_json(bounded)) <= limits.probe_json_chars:
            break
        trim(data)
        bounded = EbpfResult.model_validate(data)
    return bounded
