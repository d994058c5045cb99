"""`bpfsleuth demo`: a small faulty workload, investigated offline on this host, then stopped.

The workload is a neutral-named copy of the Python binary (`orders-app`) that keeps trying to
reach its backend on a 127.0.0.1 port nothing listens on, ten times a second. The demo runs the
real loop (offline planner, command policy, eBPF probes) against it with the symptom an on-call
engineer would type, prints the resolution, and always stops the workload: on success, on
error, on Ctrl-C, and (through PR_SET_PDEATHSIG) when the demo itself is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import BaseModel

WORKLOAD_NAME = "orders-app"
SYMPTOM = "the orders app keeps saying it can't reach its backend"
_CLIENT = """
import ctypes, os, signal, socket, sys, time
# Die with the demo (PR_SET_PDEATHSIG = 1), set here rather than in a preexec_fn.
ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[2]):
    sys.exit(0)  # the demo ended before the line above ran
port = int(sys.argv[1])
while True:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.1)
"""


class DemoWorkload(BaseModel):
    """What was started, so the caller can tell the user (and check the answer)."""

    pid: int
    comm: str
    port: int
    workdir: str


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextmanager
def faulty_workload(settle_s: float = 0.5) -> Iterator[DemoWorkload]:
    """Start the client that cannot reach its backend; stop it and clean up on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix="bpfsleuth-demo-"))
    binary = workdir / WORKLOAD_NAME
    shutil.copy2(os.path.realpath(sys.executable), binary)
    script = workdir / "main.py"
    script.write_text(_CLIENT)
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), str(script), str(port), str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(settle_s)
        yield DemoWorkload(pid=proc.pid, comm=WORKLOAD_NAME, port=port, workdir=str(workdir))
    finally:
        _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
