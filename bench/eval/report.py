"""Markdown tables from eval results: `python -m bench.eval.report RESULT.json [BEFORE.json]`.

One row per fault: quiet and noise, each `named? confidence iterations wall s`; with BEFORE,
its cells come first, then the new ones. Then the totals side by side, and where the new run's
wall time went (runs that recorded step timings, `bench.eval.timing`).
"""

from __future__ import annotations

import json
import statistics
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


PARTS = (
    ("model (planner) answers", "model_s"),
    ("host runs of the steps", "run_s"),
    ("  longest command per step", "longest_command_s"),
    ("  probe compiles (slowest per step)", "compile_s"),
    ("  probe windows (longest per step, attach to detach)", "window_s"),
    ("  rest (probe start and attach, reading maps)", "other_s"),
    ("  as it happened: commands' phase", "commands_phase_s"),
    ("  as it happened: commands' end to the first probe attached", "to_attach_s"),
    ("  as it happened: last probe's result to the step's end", "after_probes_s"),
)


def time_table(result: dict[str, Any]) -> str:
    """Median seconds per run of each part of the wall time, summed over the run's steps (runs
    that recorded step timings); and how many steps ran probes."""
    runs = [r for r in result["runs"] if r.get("steps")]
    if not runs:
        return ""
    lines = ["| per run (median) | s |", "| --- | --- |"]
    for label, key in PARTS:
        value = statistics.median(sum(t.get(key, 0.0) for t in r["steps"]) for r in runs)
        lines.append(f"| {label} | {value:.2f} |")
    probe_steps = statistics.median(sum(t["probes"] > 0 for t in r["steps"]) for r in runs)
    lines.append(f"| steps that ran probes | {probe_steps:g} |")
    lines.append(f"| wall time | {statistics.median(r['wall_s'] for r in runs):.2f} |")
    return "\n".join(lines)


def describe(result: dict[str, Any]) -> str:
    warm = result.get("warm_up")
    started = (
        "probes compiled ahead as a host worker does"
        if warm and not warm.get("cold")
        else "cold probes (each compiled on its first request)"
    )
    return (
        f"{result['measured_at']}, commit {result.get('commit', '?')}, seed {result['seed']}, "
        f"model {result['model']}, load average {result['load_avg_before'][0]} before / "
        f"{result['load_avg_after'][0]} after, {started}"
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
    times = time_table(result)
    if times:
        print("\nWhere the time goes (now):\n")
        print(times)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
