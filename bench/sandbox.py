"""What the sandbox costs a command: p50/p99 of `run_command("true")` with and without it.

    .venv/bin/python bench/sandbox.py [--runs 400]

Four series, interleaved round by round so machine load hits them alike:
- `run_command true`: the production path (policy, sandboxed spawn, capture, redaction);
- `run_command true, unsandboxed`: the same with the runner's bench-only `sandboxed=False`
  (plain Popen, as before the sandbox);
- `pipeline x3` with and without: `cat /proc/loadavg | grep . | head -n 1` (three helpers).
Added latency = p50 (and p99) with minus without. Target: < 5 ms added at p50 for `true`.
Results: bench/results/sandbox.json, with the load average before and after.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import worker.host.executor as executor  # noqa: E402
from worker.protocol import CommandRequest  # noqa: E402
from worker.sandbox import host_status  # noqa: E402

TARGET_ADDED_P50_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run(command: str, *, sandboxed: bool) -> float:
    """Milliseconds for one `run_command(command)`; fails loudly if it did not run."""
    original = executor.run_pipeline
    if not sandboxed:
        executor.run_pipeline = functools.partial(original, sandboxed=False)  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = executor.run_command(CommandRequest(id="b", command=command))
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        executor.run_pipeline = original  # type: ignore[assignment]
    if not result.ran or result.exit_code != 0:
        raise SystemExit(f"{command!r} did not run: {result.note or result.stderr}")
    if sandboxed != result.sandbox.startswith("seccomp"):
        raise SystemExit(f"unexpected sandbox {result.sandbox!r}")
    return elapsed


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 3),
        "p90_ms": round(percentile(values, 90), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "mean_ms": round(sum(values) / len(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    status = host_status()
    if not status.available:
        raise SystemExit(f"no sandbox here: {status.reason}")
    series: dict[str, Callable[[], float]] = {
        "true, sandboxed": functools.partial(run, "true", sandboxed=True),
        "true, unsandboxed": functools.partial(run, "true", sandboxed=False),
        "pipeline x3, sandboxed": functools.partial(
            run, "cat /proc/loadavg | grep . | head -n 1", sandboxed=True
        ),
        "pipeline x3, unsandboxed": functools.partial(
            run, "cat /proc/loadavg | grep . | head -n 1", sandboxed=False
        ),
    }
    for measure in series.values():  # warm caches (policy tables, page cache, helper status)
        for _ in range(10):
            measure()
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {name: [] for name in series}
    for _ in range(args.runs):
        for name, measure in series.items():
            samples[name].append(measure())
    load_after = os.getloadavg()
    stats = {name: summary(values) for name, values in samples.items()}
    added = {
        kind: {
            q: round(stats[f"{kind}, sandboxed"][q] - stats[f"{kind}, unsandboxed"][q], 3)
            for q in ("p50_ms", "p99_ms")
        }
        for kind in ("true", "pipeline x3")
    }
    print(f"sandbox: {status.layers}")
    print(f"{'series':28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for name, row in stats.items():
        print(f"{name:28} {row['p50_ms']:8.2f} {row['p90_ms']:8.2f} {row['p99_ms']:8.2f}")
    for kind, row in added.items():
        print(
            f"added by the sandbox, {kind}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms"
        )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    verdict = "met" if added["true"]["p50_ms"] < TARGET_ADDED_P50_MS else "MISSED"
    print(f"target < {TARGET_ADDED_P50_MS} ms added at p50: {verdict}")
    out = ROOT / "bench" / "results" / "sandbox.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": platform.node(),
                "kernel": platform.release(),
                "layers": status.layers,
                "runs": args.runs,
                "series": stats,
                "added": added,
                "target_added_p50_ms": TARGET_ADDED_P50_MS,
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
