"""Fixtures and hooks every test folder shares (the parts themselves are in tests/support/).

- `redis_server`: a real redis-server on a free port, one per test module.
- Tests marked `@pytest.mark.ebpf` are checked before they (and their fixtures) start: a host
  that cannot run probes skips them with the reason, and with CI=true fails them instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ebpf import require_ebpf
from tests.support.redis_server import RedisServer

pytest_plugins = ["pytester"]  # tests/test_conftest.py runs small suites against these hooks


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Runs after the skip/skipif marks are evaluated (a skipped test is never checked) and
    before the test's fixtures are set up (a workload or a cluster is not started for nothing)."""
    if item.get_closest_marker("ebpf") is not None:
        require_ebpf()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
