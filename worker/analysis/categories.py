"""Which kinds of problem a symptom describes, from how an on-call engineer would say it.

Each category has cues: word stems and phrases with a weight (3 = names the problem outright,
e.g. "futex", "refused", "oom"; 2 = a usual way to say it, e.g. "can't reach", "stuck",
"restarting"; 1 = a weak hint shared by several problems, e.g. "slow", "timeout"). A stem matches
at a word start with any ending ("restart" matches "restarts", "restarting"), so wording varies
freely. Scores add up; the categories come back best first. A symptom with no cue, or only weak
ones, also gets the `general` set so the triage casts a wide net.
"""

from __future__ import annotations

import re
from typing import Literal

Category = Literal[
    "network", "dns", "file_io", "disk", "performance", "memory", "process", "locks", "general"
]
WEAK_SCORE = 2  # a best score at or below this also adds the general set

Cue = tuple[str, int]
CUES: dict[Category, tuple[Cue, ...]] = {
    "dns": (
        ("dns", 3),
        ("name lookup", 3),
        ("lookup", 2),
        ("look up", 2),
        ("resolv", 3),
        ("nslookup", 3),
        ("getaddrinfo", 3),
        ("nxdomain", 3),
        ("servfail", 3),
        ("name or service not known", 3),
        ("hostname", 2),
        ("host name", 2),
        ("domain", 1),
        ("name server", 3),
        ("nameserver", 3),
    ),
    "network": (
        ("connect", 2),
        ("refus", 3),
        ("reach", 2),
        ("unreachable", 3),
        ("backend", 2),
        ("upstream", 2),
        ("downstream", 1),
        ("database", 1),
        ("db", 1),
        ("port", 2),
        ("socket", 2),
        ("tcp", 3),
        ("http", 1),
        ("502", 2),
        ("503", 2),
        ("504", 2),
        ("gateway", 1),
        ("timeout", 1),
        ("timed out", 1),
        ("reset", 2),
        ("retransmit", 3),
        ("packet", 2),
        ("network", 3),
        ("talk to", 2),
        ("proxy", 1),
        ("handshake", 2),
        ("unavailable", 1),
    ),
    "file_io": (
        ("file", 2),
        ("config", 3),
        ("settings", 2),
        ("no such file", 3),
        ("enoent", 3),
        ("not found", 1),
        ("missing", 2),
        ("permission denied", 3),
        ("eacces", 3),
        ("path", 1),
        ("director", 1),
        ("can't find", 2),
        ("cannot find", 2),
        ("can't open", 3),
        ("cannot open", 3),
    ),
    "disk": (
        ("disk", 3),
        ("i/o", 2),
        ("io wait", 3),
        ("iowait", 3),
        ("block device", 3),
        ("fsync", 3),
        ("storage", 2),
        ("volume", 1),
        ("ssd", 2),
        ("nvme", 3),
        ("writes are slow", 2),
        ("filesystem", 1),
        ("no space", 3),
        ("commit", 2),
        ("disk full", 3),
        ("read-only", 3),
    ),
    "performance": (
        ("slow", 1),
        ("sluggish", 2),
        ("latency", 2),
        ("spike", 2),
        ("p99", 2),
        ("response time", 2),
        ("cpu", 3),
        ("load", 1),
        ("hot", 1),
        ("spinning", 2),
        ("100%", 2),
        ("busy", 1),
        ("throttl", 2),
        ("performance", 2),
        ("lag", 2),
        ("jitter", 2),
        ("starv", 3),
        ("degrad", 1),
        ("takes forever", 1),
    ),
    "memory": (
        ("memory", 3),
        ("oom", 3),
        ("out of memory", 3),
        ("killed", 2),
        ("rss", 2),
        ("leak", 2),
        ("swap", 2),
        ("disappear", 2),
        ("vanish", 2),
        ("gone", 1),
        ("sigkill", 2),
        ("exit 137", 3),
        ("heap", 2),
    ),
    "process": (
        ("crash", 3),
        ("exit", 2),
        ("restart", 3),
        ("respawn", 3),
        ("flap", 2),
        ("keeps dying", 3),
        ("dies", 2),
        ("died", 2),
        ("exec", 2),
        ("fork", 2),
        ("spawn", 2),
        ("zombie", 3),
        ("segfault", 3),
        ("core dump", 3),
        ("job", 1),
        ("cron", 1),
        ("process", 1),
        ("disappear", 2),
        ("bounc", 1),
        ("start", 1),
    ),
    "locks": (
        ("lock", 3),
        ("contention", 3),
        ("deadlock", 3),
        ("mutex", 3),
        ("futex", 3),
        ("hang", 1),
        ("stuck", 2),
        ("blocked", 2),
        ("frozen", 2),
        ("freez", 2),
        ("wedged", 2),
        ("unresponsive", 1),
        ("no progress", 2),
        ("not making progress", 2),
        ("threads", 1),
        ("workers", 1),
    ),
}

_PATTERNS: dict[Category, list[tuple[re.Pattern[str], int]]] = {
    category: [
        (re.compile(r"(?<![a-z0-9])" + re.escape(stem).replace(r"\ ", r"\s+")), weight)
        for stem, weight in cues
    ]
    for category, cues in CUES.items()
}


def _normalise(symptom: str) -> str:
    text = symptom.lower().replace("’", "'")
    return re.sub(r"\bcan ?not\b", "can't", text)


def scores(symptom: str) -> dict[Category, int]:
    """Each category's cue weight in `symptom` (categories without a cue left out)."""
    text = _normalise(symptom)
    out: dict[Category, int] = {}
    for category, patterns in _PATTERNS.items():
        total = sum(weight for pattern, weight in patterns if pattern.search(text))
        if total:
            out[category] = total
    return out


def categorise(symptom: str) -> list[Category]:
    """Categories best first; `general` is added when no cue, or only weak ones, matched."""
    found = scores(symptom)
    order = list(CUES)
    ranked: list[Category] = sorted(found, key=lambda c: (-found[c], order.index(c)))
    if not ranked or found[ranked[0]] <= WEAK_SCORE:
        ranked.append("general")
    return ranked
