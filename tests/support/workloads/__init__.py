"""Workloads the live tests start: C programs built from `c/` with one `compile_c()`, and one
way to start a process in its own group and stop it (and whatever it started) for sure.

The fault scenarios built from these are in `scenarios.py`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

C_DIR = Path(__file__).resolve().parent / "c"


def compile_c(
    source: str,
    out_dir: Path,
    name: str | None = None,
    *,
    flags: Sequence[str] = ("-O2",),
    defines: Mapping[str, object] | None = None,
) -> Path:
    """Build `c/<source>` with gcc into `out_dir/<name>`; the name is the process's comm (a
    random `w<hex>` when not given), `defines` are passed as `-DKEY=value`. Skips the test when
    gcc is not installed."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip(f"gcc is needed to build the {source} workload")
    binary = out_dir / (name or f"w{secrets.token_hex(3)}")
    built = subprocess.run(
        [
            gcc,
            *flags,
            *(f"-D{key}={value}" for key, value in (defines or {}).items()),
            "-o",
            str(binary),
            str(C_DIR / source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"gcc failed on {source}:\n{built.stderr}")
    return binary


# A Python client that connects to 127.0.0.1:argv[1] every argv[2] seconds, forever: on a port
# nothing listens on, every connect is refused.
CONNECTOR = """
import socket, sys, time
port, pause = int(sys.argv[1]), float(sys.argv[2])
while True:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(pause)
"""

# A Python process that opens argv[1] every argv[2] seconds, forever (failing, when it is missing).
PROBER = """
import sys, time
path, pause = sys.argv[1], float(sys.argv[2])
while True:
    try:
        open(path).close()
    except OSError:
        pass
    time.sleep(pause)
"""


@contextlib.contextmanager
def refused_client(comm: str, port: int, pause_s: float = 0.05) -> Iterator[subprocess.Popen[str]]:
    """`CONNECTOR` against `port` every `pause_s` s, named `comm` before its first connect;
    killed on the way out."""
    named = (
        f'with open("/proc/self/comm", "w") as f:\n    f.write({comm!r})\n'
        'print("ready", flush=True)\n'
    )
    workload = subprocess.Popen(
        [sys.executable, "-c", named + CONNECTOR, str(port), str(pause_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert workload.stdout is not None and workload.stdout.readline().strip() == "ready"
        yield workload
    finally:
        workload.kill()
        workload.wait()


def spawn(argv: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group), output discarded unless
    `popen` says otherwise."""
    options: dict[str, object] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        **popen,
    }
    return subprocess.Popen(list(argv), start_new_session=True, **options)  # type: ignore[call-overload,no-any-return]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (the workload and any child it started), then reap. A process
    started without a group of its own (plain Popen) is killed alone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def started(argv: Sequence[str], **popen: object) -> Iterator[subprocess.Popen[bytes]]:
    """`spawn`, and `stop` on the way out whatever happened."""
    proc = spawn(argv, **popen)
    try:
        yield proc
    finally:
        stop(proc)
