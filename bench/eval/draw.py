"""Seeded randomness for one eval run: service-like names, ports, paths, values, phrasings.

One `Draw` per scenario run, derived from the run's seed and the scenario's name, so a failure
replays with `--seed S --only NAME` and every run of the suite draws new values.
"""

from __future__ import annotations

import hashlib
import random
import socket

PREFIXES = (
    "orders", "billing", "checkout", "ledger", "invent", "payments", "catalog", "search",
    "authz", "notify", "media", "reports", "session", "cart", "pricing", "shipping", "profile",
    "quota", "audit", "feeds", "tally", "relay", "vault", "intake", "export", "rating",
    "geo", "promo", "wallet", "ingest",
)  # fmt: skip
SUFFIXES = ("-api", "-svc", "-wkr", "d", "-agent", "-srv", "-sync", "-proc", "-gw", "-job", "-io")
WORDS = ("alpha", "blue", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "jade")


class Draw:
    """Random values for one scenario run; names never repeat within it."""

    def __init__(self, seed: int, label: str) -> None:
        digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        self._used: set[str] = set()

    def service(self) -> tuple[str, str]:
        """(a process name of at most 15 characters, the service word people call it by)."""
        for _ in range(200):
            word = self.rng.choice(PREFIXES)
            comm = (word + self.rng.choice(SUFFIXES))[:15]
            if comm not in self._used and word not in {u.split("-")[0] for u in self._used}:
                self._used.add(comm)
                return comm, word
        raise RuntimeError("ran out of service names")

    def comm(self) -> str:
        return self.service()[0]

    def token(self, n: int = 4) -> str:
        return "".join(self.rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n))

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def uniform(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 3)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, items: tuple[str, ...] | list[str]) -> str:
        return self.rng.choice(list(items))

    def uid(self) -> int:
        """An unprivileged uid no account uses (the kernel needs no passwd entry)."""
        return self.rng.randint(20000, 59999)

    def loopback(self) -> str:
        """A 127.x.y.z address other than 127.0.0.1 (the whole 127/8 is loopback)."""
        a, b, c = self.rng.randint(1, 250), self.rng.randint(0, 250), self.rng.randint(2, 250)
        return f"127.{a}.{b}.{c}"

    def free_port(self, address: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
        """A port free on `address` right now, drawn from 20000-60999 (not the kernel's pick)."""
        for _ in range(200):
            port = self.rng.randint(20000, 60999)
            if port_free(address, port, kind):
                return port
        raise RuntimeError("no free port found")

    def hostname(self) -> str:
        zone = self.rng.choice(("corp", "svc", "prod"))
        return f"{self.rng.choice(PREFIXES)}-{self.token(3)}.{zone}.internal"


def port_free(address: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True
