"""Markdown tables from eval results: `python -m bench.eval.report RESULT.json [BEFORE.json]`.

One row per fault: quiet and noise, each `named? confidence iterations wall s`; with BEFORE,
its cells come first, then the new ones. Then the totals side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TOTALS = (
    ("culprit named, quiet", "named_quiet"),
    ("culprit named, noise", "named_noise"),
    ("evidence recall (mean)", "evidence_recall"),
    ("runs with full recall", "full_recall_runs"),
    ("High right", "high_right"),
    ("Medium right", "medium_right"),
    ("Low answers", "low"),
    ("noise blamed (noise runs)", "blamed_noise"),
    ("median iterations", "median_iterations"),
    ("median wall s", "median_wall_s"),
)


def cell(runs: list[dict[str, Any]], scenario: str, mode: str) -> str:
    mine = [r for r in runs if r["scenario"] == scenario and r["mode"] == mode]
    if not mine:
        return "-"
    parts = []
    for r in mine:
        mark = "yes" if r["named"] else ("err" if r["error"] else "no")
        parts.append(f"{mark} {r['confidence'] or '-'} {r['iterations']} {r['wall_s']:.0f}s")
    return "; ".join(parts)


def scenario_table(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    runs = result["runs"]
    names = list(dict.fromkeys(r["scenario"] for r in runs))
    areas = {r["scenario"]: r["area"] for r in runs}
    if before:
        head = "| fault | area | before: quiet | before: noise | now: quiet | now: noise |"
    else:
        head = "| fault | area | quiet | noise |"
    lines = [head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]
    for name in names:
        cells = []
        if before:
            cells += [cell(before["runs"], name, "quiet"), cell(before["runs"], name, "noise")]
        cells += [cell(runs, name, "quiet"), cell(runs, name, "noise")]
        lines.append(f"| {name} | {areas[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def totals_table(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    if before:
        lines = ["| total | before | now |", "| --- | --- | --- |"]
    else:
        lines = ["| total | value |", "| --- | --- |"]
    for label, key in TOTALS:
        now = result["totals"].get(key)
        if before:
            lines.append(f"| {label} | {before['totals'].get(key)} | {now} |")
        else:
            lines.append(f"| {label} | {now} |")
    return "\n".join(lines)


def describe(result: dict[str, Any]) -> str:
    return (
        f"{result['measured_at']}, commit {result.get('commit', '?')}, seed {result['seed']}, "
        f"model {result['model']}, load average {result['load_avg_before'][0]} before / "
        f"{result['load_avg_after'][0]} after"
    )


def main(argv: list[str]) -> int:
    result = json.loads(Path(argv[0]).read_text())
    before = json.loads(Path(argv[1]).read_text()) if len(argv) > 1 else None
    if before:
        print(f"before: {describe(before)}  ")
    print(f"now: {describe(result)}\n")
    print("Cells: named? confidence iterations wall-time.\n")
    print(scenario_table(result, before))
    print()
    print(totals_table(result, before))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
