"""Real worker processes for the distributed tests: `bpfsleuth worker ...` subprocesses.

Each worker runs in its own process group (start_new_session) so a test can SIGKILL a whole
worker (Celery's main process and its pool children) and teardown leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.paths import BPFSLEUTH
from worker.distributed.registry import Registry
from worker.distributed.runtime import Runtime, build_runtime
from worker.loop.events import ProgressEvent
from worker.loop.investigation import Budgets, Investigation
from worker.settings import DistributedSettings, WorkerSettings

READY_TIMEOUT_S = 60.0


class WorkerProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BPFSLEUTH), "worker", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def group_pids(self) -> set[int]:
        """Every live process of this worker's process group (main process and pool)."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.pid:  # field 5 of stat: pgrp
                    pids.add(int(entry.name))
        return pids

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log_text()[-3000:]}")
            if " ready." in self.log_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready:\n{self.log_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.process = None


class Cluster:
    """A control worker and named host workers on one Redis, with a scripted model."""

    def __init__(self, redis_url: str, directory: Path, **env: str) -> None:
        self.redis_url = redis_url
        self.directory = directory
        self.script = directory / "replies.json"
        self.script.write_text("[]")
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "BPFSLEUTH_SCRIPTED_REPLIES": str(self.script),
            "BPFSLEUTH_MODEL": "offline",
            "BPFSLEUTH_HEARTBEAT_S": "1",
            "BPFSLEUTH_STEP_GRACE_S": "3",
            "BPFSLEUTH_COMMAND_TIMEOUT_S": "3",
            "BPFSLEUTH_PLAN_EXPIRY_MARGIN_S": "0",
            # each host worker would compile the whole catalog at start; the test of that
            # (test_host_keeps_probes.py) turns it back on
            "BPFSLEUTH_PRECOMPILE": "0",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("BPFSLEUTH_HOST", None)
        self.workers: dict[str, WorkerProcess] = {}
        # the test process sees the settings the workers see
        ours = {k: v for k, v in self.env.items() if k.startswith("BPFSLEUTH_") or k == "REDIS_URL"}
        self.settings = WorkerSettings(**ours)
        self.dist = DistributedSettings(**ours)
        self.runtime: Runtime = build_runtime(self.settings, self.dist)

    def add(self, name: str, *args: str) -> WorkerProcess:
        log = self.directory / f"worker-{name}.log"
        worker = WorkerProcess(name, list(args), self.env, log)
        self.workers[name] = worker
        worker.start()
        return worker

    def add_control(self) -> WorkerProcess:
        return self.add("control", "--control", "--concurrency", "2")

    def add_host(self, name: str) -> WorkerProcess:
        return self.add(name, "--host", name, "--concurrency", "1")

    def wait_ready(self) -> None:
        for worker in self.workers.values():
            worker.wait_ready()
        hosts = [n for n, w in self.workers.items() if "--host" in w.args]
        registry = Registry.from_url(self.redis_url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            live = {r.name for r in registry.live_hosts()}
            if set(hosts) <= live:
                return
            time.sleep(0.1)
        raise RuntimeError(f"hosts {hosts} never beat; live: {live}")

    def restart(self, name: str) -> WorkerProcess:
        old = self.workers[name]
        old.stop()
        worker = WorkerProcess(name, old.args, self.env, old.log)
        self.workers[name] = worker
        worker.start()
        return worker

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def script_replies(self, replies: list[dict[str, Any]]) -> None:
        tmp = self.script.with_suffix(".tmp")
        tmp.write_text(json.dumps(replies))
        tmp.replace(self.script)

    def start(self, symptom: str, hosts: list[str], max_iterations: int = 6) -> Investigation:
        from worker.distributed.control import start_investigation

        return start_investigation(
            self.runtime,
            symptom,
            hosts,
            asked_by="test:distributed",
            budgets=Budgets(max_iterations=max_iterations),
        )

    def follow(
        self,
        investigation_id: str,
        on_event: Callable[[ProgressEvent], None] | None = None,
        timeout_s: float = 60,
    ) -> Investigation:
        from worker.distributed.follow import FollowError, follow

        try:
            return follow(
                self.runtime, investigation_id, on_event or (lambda _e: None), timeout_s=timeout_s
            )
        except FollowError as exc:
            exc.add_note(self.logs_tail())
            raise

    def logs_tail(self, chars: int = 2500) -> str:
        """The end of every worker's log, for a failing test's message."""
        return "\n".join(
            f"--- worker {name} ---\n{worker.log_text()[-chars:]}"
            for name, worker in self.workers.items()
        )


def command_step(*commands: tuple[str, str], reasoning: str = "look") -> dict[str, Any]:
    return {
        "response_type": "diagnostic",
        "reasoning": reasoning,
        "commands": [{"id": cid, "command": cmd} for cid, cmd in commands],
    }


def probe_step(name: str, target: str, duration: float, **params: Any) -> dict[str, Any]:
    return {
        "response_type": "diagnostic",
        "reasoning": "trace it",
        "ebpf_programs": [
            {
                "name": name,
                "type": "catalog",
                "target": target,
                "duration": duration,
                "params": params,
            }
        ],
    }


def resolution(cause: str = "the scripted cause") -> dict[str, Any]:
    return {
        "response_type": "resolution",
        "root_cause": cause,
        "resolution_plan": "do the scripted thing",
        "confidence": "High",
        "ebpf_evidence": "",
    }
