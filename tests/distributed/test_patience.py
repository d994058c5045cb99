"""`patiently`: a Redis write retried while Redis is away, for a bounded time (tenacity)."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from worker.distributed.runtime import PUBLISH_ERRORS, patiently
from worker.distributed.store import StoreUnavailable


def test_a_write_is_retried_until_redis_answers() -> None:
    failures = random.randint(1, 2)
    calls: list[float] = []

    def write() -> str:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise StoreUnavailable(f"redis away (call {len(calls)})")
        return "written"

    assert patiently(write, patience_s=5.0) == "written"
    assert len(calls) == failures + 1
    pauses = [b - a for a, b in itertools.pairwise(calls)]
    assert all(p >= 0.25 * 2**i for i, p in enumerate(pauses))  # 0.25 s, then doubling


def test_it_gives_up_with_the_last_error_once_patience_runs_out() -> None:
    calls = 0

    def write() -> None:
        nonlocal calls
        calls += 1
        raise StoreUnavailable(f"still away ({calls})")

    with pytest.raises(StoreUnavailable, match=r"still away \(\d\)"):
        patiently(write, patience_s=0.6)
    assert 2 <= calls <= 3  # after 0.25 s, the next pause (0.5 s) would pass the patience


def test_other_errors_are_not_retried() -> None:
    calls = 0

    def write() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        patiently(write, patience_s=5.0)
    assert calls == 1
    # a publish to the broker: kombu's errors count as an outage too
    assert StoreUnavailable in PUBLISH_ERRORS and ConnectionError in PUBLISH_ERRORS
