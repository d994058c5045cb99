"""Ack latency of signed /diagnose slash commands, bot in HTTP mode, real broker enqueue.

    .venv/bin/python bench/slack_ack.py [--concurrency 1,10,50] [--requests 200,500,1000]
                                        [--workers 1,2] [--servers old,gunicorn] [--threads 8]

Starts its own redis-server on a free port, one real host worker (so the host is live; no
control worker, so the enqueued `advance` tasks wait in the broker and nothing else competes
for the CPU), the fake Slack Web API and `bpfsleuth bot --http --workers W` as a user runs it
(`gunicorn`: today's server), or the hand-made threaded server of commit 80010e6 run from git
by bench/old_http_bot.py (`old`), in the same run.
Then, at each concurrency level C, N signed slash commands go to the bot from C client threads,
two ways: `closed`, each thread sending its next request as soon as the previous one is
answered (latency = C / throughput), and `burst`, C requests released at the same instant,
all answered, a pause, again (what C people typing /diagnose at once see):

- `help`: parse, render, ack (no enqueue);
- `investigate`: `/diagnose alpha <symptom>`: parse (live hosts from the registry), the channel
  cap check, the investigation stored in Redis and its first task sent to the broker, the
  Slack thread registered, then the ack. The bot's progress consumer meanwhile posts each new
  investigation's root message to the fake Slack, in the main bot process.

Latency is client-side: from opening the connection to the full response (one request per
connection, as Slack sends them). The load generator is deliberately light (pre-signed requests
on raw sockets), because it shares the machine's two cores with the bot. Every response is
checked (200, and "started" for investigations).
Results: bench/results/slack_ack.json (one entry per server and --workers value).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.latency import summary  # noqa: E402
from tests.support.bot import SIGNING_SECRET, BotProcess, bot_env  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.fakes.slack_api import FakeSlackApi, SlackRequests, sign_request  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

TARGET_P99_MS = 100.0


_TICK = os.sysconf("SC_CLK_TCK")


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return table


def cpu_by_role(roles: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each role: the process `roles[name]` and its descendants
    (the bench process: itself only, i.e. the load generator and the fake Slack)."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    used = {}
    for name, root in roles.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += table.get(pid, (0, 0.0))[1]
            if pid != os.getpid():
                todo += children.get(pid, [])
        used[name] = total
    return used


def _bot_roles(bot_pid: int) -> dict[str, int]:
    """The bot's main process (progress rendering) apart from its HTTP server child tree."""
    table = _process_table()
    server = [pid for pid, (ppid, _) in table.items() if ppid == bot_pid]
    roles = {"bot server (HTTP workers)": server[0]} if len(server) == 1 else {}
    return roles


def _request_bytes(port: int, body: bytes) -> bytes:
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **sign_request(SIGNING_SECRET, body),
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /slack/events HTTP/1.1\r\n{head}\r\n".encode() + body


def _send(port: int, raw: bytes) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    elapsed = time.perf_counter() - started
    response = b"".join(chunks)
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return elapsed, status, response.partition(b"\r\n\r\n")[2]


def run_level(
    port: int, kind: str, concurrency: int, total: int, counter: list[int]
) -> tuple[list[float], float]:
    """`total` requests from `concurrency` client threads (closed loop); latencies, wall time."""
    builder = SlackRequests("http://unused", SIGNING_SECRET)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_thread = [
        total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)
    ]
    prepared: list[list[bytes]] = []
    for count in per_thread:
        raws = []
        for _ in range(count):
            counter[0] += 1
            n = counter[0]
            text = "help" if kind == "help" else f"alpha bench symptom {n}"
            body = builder.slash_command_body(
                text, channel_id=f"C0B{n:07d}", channel_name="inc-bench"
            )
            raws.append(_request_bytes(port, body))
        prepared.append(raws)
    barrier = threading.Barrier(concurrency + 1)

    def worker(raws: list[bytes]) -> None:
        barrier.wait()
        mine = []
        for raw in raws:
            elapsed, status, body = _send(port, raw)
            mine.append(elapsed)
            if status != 200 or (kind != "help" and b"started" not in body):
                with lock:
                    errors.append(f"{status} {body[:200]!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(raws,)) for raws in prepared]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} bad responses, first: {errors[0]}")
    return latencies, wall


def run_bursts(
    port: int, kind: str, size: int, total: int, counter: list[int]
) -> tuple[list[float], float]:
    """`size` requests sent at the same instant, answered, a pause, again, until `total`:
    what 50 people typing /diagnose at once see (Slack's traffic is open, not a closed loop)."""
    latencies: list[float] = []
    wall = 0.0
    for _ in range(max(1, total // size)):
        batch, took = run_level(port, kind, size, size, counter)
        latencies += batch
        wall += took
        time.sleep(0.3)  # let the progress consumer catch up between bursts
    return latencies, wall


def measure(
    server_kind: str, workers: int, threads: int, levels: list[int], totals: list[int]
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory)
        server.start()
        slack = FakeSlackApi().start()
        cluster = Cluster(server.url, directory)
        env = bot_env(
            cluster.env, slack, server.url, BPFSLEUTH_MAX_PER_CHANNEL="100", BPFSLEUTH_USERS=""
        )
        if server_kind == "old":
            command = [sys.executable, str(ROOT / "bench" / "old_http_bot.py")]
            bot = BotProcess(env, directory / "bot.log", workers=workers, command=command)
        else:
            bot = BotProcess(env, directory / "bot.log", workers=workers, threads=threads)
        try:
            cluster.add_host("alpha")
            cluster.wait_ready()
            bot.start()
            counter = [0]
            # warm-up: every worker process pays for lazy imports and connections once
            run_level(bot.port, "investigate", 4, 40, counter)
            run_level(bot.port, "help", 4, 40, counter)
            assert bot.process is not None and server.process is not None
            roles = {
                "bot (all processes)": bot.process.pid,
                **_bot_roles(bot.process.pid),
                "redis-server": server.process.pid,
                "bench: load generator + fake Slack": os.getpid(),
            }
            for concurrency, total in zip(levels, totals, strict=True):
                for mode, runner in (("closed", run_level), ("burst", run_bursts)):
                    for kind in ("help", "investigate"):
                        before = cpu_by_role(roles)
                        latencies, wall = runner(bot.port, kind, concurrency, total, counter)
                        after = cpu_by_role(roles)
                        row = summary(latencies, with_min=False) | {
                            "req_per_s": round(len(latencies) / wall, 1)
                        }
                        # CPU ms per request by role (the bot's main process renders progress;
                        # with the bursts' pauses, it catches up inside the window too).
                        for name in roles:
                            row[f"cpu_ms/req {name}"] = round(
                                (after[name] - before[name]) * 1000 / len(latencies), 2
                            )
                        results[f"{kind}@{concurrency}/{mode}"] = row
                        print(
                            f"{server_kind} w={workers} {mode:6s} {kind:11s} c={concurrency:<3d} "
                            f"n={row['n']:<5} p50 {row['p50_ms']:7.2f} ms  "
                            f"p99 {row['p99_ms']:7.2f} ms  max {row['max_ms']:7.2f} ms  "
                            f"{row['req_per_s']:7.1f} req/s",
                            flush=True,
                        )
                        print(
                            "    cpu ms/req: "
                            + ", ".join(
                                f"{k.removeprefix('cpu_ms/req ')} {v}"
                                for k, v in row.items()
                                if k.startswith("cpu_ms/req")
                            ),
                            flush=True,
                        )
            queued = redis.Redis.from_url(server.url).llen("control")
            roots = len(slack.calls_to("chat.postMessage"))
            print(f"advance tasks in the broker: {queued}; root messages posted: {roots}")
        finally:
            bot.stop()
            cluster.stop()
            slack.stop()
            server.stop()
    return results


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--requests", default="200,500,1000", help="per concurrency level")
    parser.add_argument("--workers", default="1,2", help="bot HTTP processes, one run each")
    parser.add_argument("--servers", default="old,gunicorn", help="old (80010e6), gunicorn")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    totals = [int(x) for x in args.requests.split(",")]
    if len(totals) != len(levels):
        raise SystemExit("--requests needs one number per --concurrency level")
    runs: dict[str, dict[str, dict[str, float]]] = {}
    loads: list[str] = []
    for server_kind in args.servers.split(","):
        for workers in [int(x) for x in args.workers.split(",")]:
            loads.append(f"{server_kind} workers={workers} before: {_load_average()}")
            runs[f"{server_kind} workers={workers}"] = measure(
                server_kind, workers, args.threads, levels, totals
            )
    loads.append(f"end: {_load_average()}")
    best: dict[str, tuple[float, str]] = {}
    for server_kind in args.servers.split(","):
        best[server_kind] = min(
            (r[f"investigate@{max(levels)}/{mode}"]["p99_ms"], f"{name}, {mode}")
            for name, r in runs.items()
            if name.startswith(server_kind + " ")
            for mode in ("closed", "burst")
        )
    best_p99, best_config = min(best.values())
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        "python": platform.python_version(),
        "target": f"investigate p99 < {TARGET_P99_MS:.0f} ms at {max(levels)} concurrent",
        "threads": args.threads,
        "load_average": loads,
        "results": runs,
        "best_per_server": {k: {"p99_ms": v[0], "config": v[1]} for k, v in best.items()},
        "best": {"p99_ms": best_p99, "config": best_config},
        "target_met": best_p99 < TARGET_P99_MS,
    }
    out = ROOT / "bench" / "results" / "slack_ack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for server_kind, (p99, config) in best.items():
        print(f"best p99 at {max(levels)} for {server_kind}: {p99} ms ({config})")
    print(f"load averages: {'; '.join(loads)}")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
