"""Live-test plumbing: a workload process that waits for "go", and a probe run around it.

The workload is a real Python process (`sys.executable -c SCRIPT`). It does its set-up, prints one
JSON line (facts the test needs, e.g. its port), waits for a line on stdin, does its work, prints a
final JSON line and exits. The probe is started with the workload's pid as an in-kernel filter
when asked, and the workload is released only once the probe reports `attached`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from probes.engine.runner import ProbeProgress, run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from tests.support.ebpf import scaled
from tests.support.paths import example_json

# A workload whose non-blocking connects get no answer: a listener that never accepts (backlog 0)
# takes the first into its full accept queue, then drops the SYNs, so the client retransmits them.
# argv: the number of connects, how long to keep them waiting (s), and "close" to close them then.
UNANSWERED_CONNECTS = r"""
import json, socket, sys, time
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(0)   # never accepts
port = server.getsockname()[1]
print(json.dumps({"port": port}), flush=True)
sys.stdin.readline()
held = []
for _ in range(int(sys.argv[1])):
    c = socket.socket(); c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(c)
time.sleep(float(sys.argv[2]))
if sys.argv[3:] == ["close"]:
    for c in held:
        c.close()
print(json.dumps({}), flush=True)
"""


class Workload:
    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "workload died during set-up"
        self.setup: dict[str, Any] = json.loads(line)
        self._comm = Path(f"/proc/{self.proc.pid}/comm").read_text().strip()
        self.done: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def comm(self) -> str:
        return self._comm

    @property
    def label(self) -> str:
        """How probes name this process: `comm (pid N)`."""
        return f"{self.comm} (pid {self.pid})"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        out, _ = self.proc.communicate(timeout=scaled(timeout))
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.done = json.loads(lines[-1]) if lines else {}
        return self.done

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_around(
    probe: str,
    workload: Workload,
    *,
    duration_s: float = 3.0,
    by_pid: bool = True,
    filters: ProbeFilters | None = None,
    params: dict[str, int | float | bool | str] | None = None,
) -> ProbeResult:
    """Run `probe`, release the workload once attached, return the result."""
    attached = threading.Event()
    box: dict[str, ProbeResult | BaseException] = {}

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached":
            attached.set()

    request = ProbeRequest(
        probe=probe,
        label=f"test_{probe}",
        duration_s=duration_s,
        filters=filters or (ProbeFilters(pid=workload.pid) if by_pid else ProbeFilters()),
        params=params or {},
    )

    def target() -> None:
        try:
            box["result"] = run_probe(request, on_progress=on_progress)
        except BaseException as exc:  # re-raised in the test thread
            box["result"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    try:
        attached.wait(scaled(60))
        workload.go()
        thread.join(scaled(120))
    finally:
        if not attached.is_set():
            workload.kill()
    result = box.get("result")
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, ProbeResult), "probe run did not finish"
    assert result.error is None, result.error
    return result


def save_example(result: ProbeResult) -> None:
    """BPFSLEUTH_UPDATE_EXAMPLES=1 refreshes the probe's example.json from a live test run."""
    if os.environ.get("BPFSLEUTH_UPDATE_EXAMPLES") == "1":
        example_json(result.probe).write_text(result.model_dump_json(indent=2) + "\n")
