"""Which kind of problem a symptom describes, from its words (no model needed)."""

from __future__ import annotations

import re
from typing import Literal

Category = Literal["network", "dns", "file_io", "disk", "cpu", "memory", "process", "locks"]

KEYWORDS: dict[Category, tuple[str, ...]] = {
    "dns": ("dns", "resolve", "resolution", "nslookup", "getaddrinfo", "hostname", "name server"),
    "network": (
        "connect",
        "connection",
        "refused",
        "timeout",
        "timed out",
        "tcp",
        "port",
        "socket",
        "network",
        "unreachable",
        "reset",
        "retransmit",
        "database",
        "db",
        "http",
        "latency",
        "upstream",
        "502",
        "503",
        "504",
    ),
    "file_io": (
        "file",
        "open",
        "no such file",
        "enoent",
        "permission denied",
        "eacces",
        "config",
        "missing",
        "path",
        "directory",
    ),
    "disk": ("disk", "i/o", "io wait", "iowait", "block", "fsync", "write latency", "storage"),
    "cpu": ("cpu", "slow", "load", "hot", "spinning", "100%", "busy", "throttl", "performance"),
    "memory": ("memory", "oom", "out of memory", "killed", "rss", "leak", "swap"),
    "process": ("crash", "exit", "restart", "exec", "fork", "spawn", "zombie", "dies"),
    "locks": ("lock", "contention", "deadlock", "mutex", "futex", "hang", "stuck", "blocked"),
}


def categorise(symptom: str) -> list[Category]:
    """Categories whose words appear in `symptom`, best match first; `cpu` when none does."""
    text = symptom.lower()
    scores: dict[Category, int] = {}
    for category, words in KEYWORDS.items():
        hits = sum(1 for word in words if re.search(rf"(?<![a-z]){re.escape(word)}", text))
        if hits:
            scores[category] = hits
    if not scores:
        return ["cpu"]
    return sorted(scores, key=lambda c: (-scores[c], list(KEYWORDS).index(c)))
