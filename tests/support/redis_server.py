"""A real `redis-server` on a free port, for tests that need Redis (Celery, store, Slack bot).

The `redis_server` fixture of tests/conftest.py (one server per test module) gives one::

    def test_something(redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url)

The server runs without persistence (`--save '' --appendonly no`) in a temporary directory and is
killed after the module. `restart(keep_data=True)` stops it with `SHUTDOWN SAVE` (an RDB snapshot
written once, as a production Redis with persistence would) and starts it again on the same port;
`keep_data=False` kills it with SIGKILL, so it comes back empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.ports import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process we own; `url` is what REDIS_URL should be."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for_db(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.fail(f"redis-server not found ({REDIS_SERVER}); run `make setup`")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--dbfilename",
                "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode} on start")
            if _ping(self.port):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"redis-server did not answer PING on port {self.port}")

    def stop(self, *, save: bool = False) -> None:
        if self.process is None:
            return
        if save and _ping(self.port):
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"SHUTDOWN SAVE\r\n")
                sock.settimeout(10)
                try:
                    while sock.recv(64):
                        pass
                except OSError:
                    pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, keep_data: bool = True, down_s: float = 0.0) -> None:
        """Stop (saving a snapshot when `keep_data`), stay down `down_s`, start on the same port."""
        if not keep_data:
            (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.stop(save=keep_data)
        if down_s:
            time.sleep(down_s)
        self.start()
