"""Loop overhead through Celery versus in process, and fan-out to 2, 8 and 32 host queues.

    .venv/bin/python bench/celery_loop.py [--runs 40] [--fanout 2,8,32]

Starts its own redis-server on a free port and real `bpfsleuth worker` processes (a control
worker and one host worker per simulated host, pool solo), with an instant scripted model:
step 1 asks for one command (`uname -r`), step 2 resolves. So an investigation is exactly one
loop iteration: decide, run the plan on every host, merge, decide.

- overhead: the same investigation run N times in process (`run_investigation`) and N times
  through the broker (`start_investigation` + following the progress stream as the CLI does);
  p50/p99 of each and the difference.
- fan-out: the same investigation on 2, 8 and 32 hosts; time to the merged step (dispatch to
  the last host's result recorded) and the whole investigation.

Results go to bench/results/celery_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency import summary  # noqa: E402
from tests.support.cluster import Cluster, command_step, resolution  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from worker.backends.scripted import ScriptedBackend  # noqa: E402
from worker.loop.investigation import Budgets  # noqa: E402
from worker.loop.run import run_investigation  # noqa: E402

CONTROL_POOL = os.environ.get("BENCH_CONTROL_POOL", "prefork")
SCRIPT = [command_step(("kernel", "uname -r")), resolution("bench")]


def in_process(runs: int) -> list[float]:
    from worker.loop.system_prompt import local_system_prompt

    system = local_system_prompt(["local"], 6)
    times = []
    for _ in range(runs):
        backend = ScriptedBackend(SCRIPT)
        started = time.perf_counter()
        inv = run_investigation(
            "bench", ["local"], backend, budgets=Budgets(max_iterations=6), system_prompt=system
        )
        times.append(time.perf_counter() - started)
        assert inv.status == "resolved", inv.stop_reason
    return times


def through_celery(
    cluster: Cluster, hosts: list[str], runs: int
) -> tuple[list[float], list[float]]:
    """Whole-investigation times and dispatch-to-merged-step times."""
    totals, joins = [], []
    for _ in range(runs):
        started = time.perf_counter()
        inv = cluster.start("bench", hosts)
        done = cluster.follow(inv.id, timeout_s=120)
        totals.append(time.perf_counter() - started)
        assert done.status == "resolved" and len(done.results) == len(hosts), done.stop_reason
        assert all(r.command_results["kernel"].ran for r in done.results), done.results
        plan_at = done.turns[0].finished_at
        assert plan_at is not None
        merged_at = done.turns[1].started_at
        joins.append((merged_at - plan_at).total_seconds())
    return totals, joins


def start_cluster(redis: RedisServer, directory: Path, hosts: list[str]) -> Cluster:
    cluster = Cluster(redis.url, directory, BPFSLEUTH_STEP_GRACE_S="60", BPFSLEUTH_HEARTBEAT_S="5")
    cluster.add(
        "control",
        "--control",
        "--concurrency",
        "2",
        "--pool",
        CONTROL_POOL,
        "--loglevel",
        "WARNING",
    )
    for host in hosts:
        cluster.add(host, "--host", host, "--pool", "solo", "--loglevel", "WARNING")
    cluster.script_replies(SCRIPT)
    cluster_ready(cluster, hosts)
    return cluster


def cluster_ready(cluster: Cluster, hosts: list[str]) -> None:
    from worker.distributed.registry import Registry

    registry = Registry.from_url(cluster.redis_url)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if set(hosts) <= {r.name for r in registry.live_hosts()}:
            time.sleep(2.0)  # consumers attach just after the first heartbeat
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not come up")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--fanout", default="2,8,32")
    parser.add_argument("--fanout-runs", type=int, default=10)
    args = parser.parse_args()
    fanouts = [int(x) for x in args.fanout.split(",") if x]
    os.environ.setdefault("BPFSLEUTH_MODEL", "offline")
    out: dict[str, object] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "plan": "one command (uname -r) per host, instant scripted model, 2 model turns",
    }
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            local = in_process(args.runs)
            cluster = start_cluster(redis, Path(tmp), ["h1"])
            try:
                through_celery(cluster, ["h1"], 3)  # warm up (imports, connections)
                celery_totals, celery_joins = through_celery(cluster, ["h1"], args.runs)
            finally:
                cluster.stop()
            overhead = {
                "in_process": summary(local),
                "celery": summary(celery_totals),
                "celery_step_dispatch_to_merge": summary(celery_joins),
            }
            overhead["added_p50_ms"] = round(
                overhead["celery"]["p50_ms"] - overhead["in_process"]["p50_ms"], 2
            )
            overhead["added_p99_ms"] = round(
                overhead["celery"]["p99_ms"] - overhead["in_process"]["p99_ms"], 2
            )
            out["overhead_one_iteration"] = overhead
            print(json.dumps(overhead, indent=2), flush=True)
            fan: dict[str, object] = {}
            for n in fanouts:
                hosts = [f"h{i}" for i in range(n)]
                cluster = start_cluster(redis, Path(tmp), hosts)
                try:
                    through_celery(cluster, hosts, 2)
                    totals, joins = through_celery(cluster, hosts, args.fanout_runs)
                finally:
                    cluster.stop()
                fan[str(n)] = {
                    "investigation": summary(totals),
                    "dispatch_to_merged_step": summary(joins),
                }
                print(n, json.dumps(fan[str(n)]), flush=True)
            out["fanout"] = fan
            out["load_average_at_end"] = list(os.getloadavg())
        finally:
            redis.stop()
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "celery_loop.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {results / 'celery_loop.json'}")


if __name__ == "__main__":
    # SIGTERM unwinds through the finally blocks, so workers and Redis are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
