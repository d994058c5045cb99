"""Time to the first evidence: a 4-probe first plan, cold and after a worker's warm-up.

    .venv/bin/python bench/first_plan.py [--repeats 5] [--cold 3]

The plan is what a first step asks for: tcp_connect, file_opens, exec and syscall_errors, all
filtered on one pid (a fresh sleeper process per plan, so every plan has a pid no earlier plan
had). Measured from `run_probes` to the fourth `attached`:
- cold: nothing kept, a process and a compile per probe (what a worker did before);
- precompiled: as a host worker does at start (`keep_compiled`, `keep_warm`,
  `precompile_catalog`), after `wait_precompiled`; every plan has a new pid filter and the
  runner's compile counter must not move (filters and run-time parameters are map values).
Run as root. Writes bench/results/first_plan.json; the load average is recorded per plan.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes.engine import runner  # noqa: E402
from probes.engine.runner import (  # noqa: E402
    ProbeProgress,
    compile_count,
    keep_compiled,
    keep_warm,
    precompile_catalog,
    run_probes,
    wait_precompiled,
)
from probes.models import ProbeFilters, ProbeRequest  # noqa: E402

PLAN = ("tcp_connect", "file_opens", "exec", "syscall_errors")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


def one_plan() -> dict[str, Any]:
    """Run the plan once, filtered on a fresh process's pid; when each probe attached."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        requests = [
            ProbeRequest(
                probe=name, label=name, duration_s=1, filters=ProbeFilters(pid=sleeper.pid)
            )
            for name in PLAN
        ]
        load = os.getloadavg()[0]
        compiles = compile_count()
        attached: dict[str, float] = {}
        started = time.monotonic()

        def on_progress(progress: ProbeProgress) -> None:
            if progress.phase == "attached":
                attached[progress.label] = time.monotonic() - started

        results = run_probes(requests, on_progress=on_progress)
    finally:
        sleeper.kill()
        sleeper.wait()
    return {
        "all_attached_s": round(max(attached.values()), 3) if len(attached) == len(PLAN) else None,
        "attached_s": {k: round(v, 3) for k, v in sorted(attached.items())},
        "compile_s": {r.probe: r.compile_s for r in results},
        "compiles": compile_count() - compiles,
        "errors": [r.error for r in results if r.error],
        "loadavg_1m": round(load, 2),
    }


def _median(runs: list[dict[str, Any]]) -> float | None:
    values = [r["all_attached_s"] for r in runs if r["all_attached_s"] is not None]
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5, help="precompiled plans")
    parser.add_argument("--cold", type=int, default=3, help="cold plans")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: probes load BPF programs")

    cold = [one_plan() for _ in range(args.cold)]

    keep_compiled(24)
    keep_warm(2)
    load = os.getloadavg()[0]
    cpu = _children_cpu()
    started = time.monotonic()
    precompiled = precompile_catalog()
    call_s = time.monotonic() - started
    ready = wait_precompiled(600)
    warmup = {
        "probes": precompiled,
        "call_s": round(call_s, 3),  # what a worker's process init spends (spawns, prepare)
        "ready_s": round(time.monotonic() - started, 3),  # all compiled, in the background
        "ready": ready,
        "loadavg_1m": round(load, 2),
        "compiles": compile_count(),
        # memory of the kept probe processes (Python + bcc + one loaded probe each)
        "kept_rss_mib": _rss_mib([proc.pid for proc in runner._KEPT.idle.values()]),
    }
    time.sleep(3.0)  # as between two plans of a worker: the warm pool refilled
    warm = []
    for _ in range(args.repeats):
        warm.append(one_plan())
        time.sleep(1.0)
    keep_warm(0)
    keep_compiled(0)
    warmup["children_cpu_s"] = round(_children_cpu() - cpu, 3)  # reaped on release

    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "plan": list(PLAN),
        "cold": cold,
        "cold_median_s": _median(cold),
        "warmup": warmup,
        "precompiled": warm,
        "precompiled_median_s": _median(warm),
        "precompiled_compiles": sum(r["compiles"] for r in warm),
        "target_s": 0.3,
    }
    path = ROOT / "bench" / "results" / "first_plan.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"cold (a process and a compile per probe): median {out['cold_median_s']} s")
    for run in cold:
        print(f"  {run['all_attached_s']} s at load {run['loadavg_1m']}  {run['errors'] or ''}")
    print(
        f"warm-up: {len(precompiled)} probes, call {warmup['call_s']} s, all compiled after "
        f"{warmup['ready_s']} s (load {warmup['loadavg_1m']}), {warmup['children_cpu_s']} CPU-s, "
        f"kept processes {warmup['kept_rss_mib']} MiB RSS"
    )
    print(
        f"precompiled, a new pid filter each plan: median {out['precompiled_median_s']} s, "
        f"{out['precompiled_compiles']} compiles"
    )
    for run in warm:
        print(f"  {run['all_attached_s']} s at load {run['loadavg_1m']}  {run['errors'] or ''}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
