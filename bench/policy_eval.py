"""CPU time per `evaluate()` call on everyday commands: `python -m bench.policy_eval`.

CPU time (not wall time) so that a loaded machine does not inflate the figure; print the load
average beside it anyway.
"""

from __future__ import annotations

import os
import statistics
import time

from worker.policy import evaluate

EVERYDAY = [
    "ss -tlnp",
    "ps aux",
    "ps -eo pid,comm,%cpu --sort=-%cpu",
    "dmesg -T | tail -50",
    "journalctl -u nginx -n 100 --no-pager",
    "grep -c ERROR /var/log/syslog",
    "lsof -nP -i :5432",
    "ip -s link",
    "cat /proc/meminfo",
    "df -h",
    "free -m",
    "pidstat 1 1",
    "awk '{print $1}' /proc/loadavg",
    "sed -n 1,20p /var/log/syslog",
    "ps aux | sort | uniq -c | sort -rn | head",
    "systemctl status nginx",
    "top -b -n 1",
    "uptime",
]


def cpu_us_per_call(commands: list[str], rounds: int = 100, repeats: int = 7) -> list[float]:
    for command in commands:
        evaluate(command)
    results: list[float] = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(rounds):
            for command in commands:
                evaluate(command)
        results.append((time.process_time() - started) / (rounds * len(commands)) * 1e6)
    return results


def main() -> None:
    results = cpu_us_per_call(EVERYDAY)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"evaluate(): median {statistics.median(results):.1f} us CPU per call "
        f"(min {min(results):.1f}) over {len(EVERYDAY)} everyday commands; load {load}"
    )


if __name__ == "__main__":
    main()
