"""Other processes: a process the test started survives every attempt to signal, renice,
re-limit or trace it from inside the sandbox, and keeps its priority and limits."""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Iterator

import pytest

from tests.sandbox.conftest import sandboxed
from worker.sandbox import Profile

PY = "/usr/bin/python3"


@pytest.fixture
def victim() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    token = f"{3000 + int.from_bytes(os.urandom(2), 'big')}.{os.urandom(3).hex()}"
    token = token.replace("a", "1").replace("b", "2").replace("c", "3")
    token = token.replace("d", "4").replace("e", "5").replace("f", "6")
    process = subprocess.Popen(["sleep", token], start_new_session=True)
    yield process, token
    process.kill()
    process.wait()


ATTEMPTS = [
    ["kill", "-9", "{pid}"],
    ["kill", "-TERM", "-{pid}"],
    ["kill", "-STOP", "{pid}"],
    ["pkill", "-9", "-f", "{token}"],
    ["killall", "-9", "sleep"],
    ["renice", "+19", "-p", "{pid}"],
    ["prlimit", "--pid", "{pid}", "--nofile=3:3"],
    ["taskset", "-p", "1", "{pid}"],
    ["ionice", "-c", "3", "-p", "{pid}"],
    ["bash", "-c", "kill -9 {pid}"],
    [PY, "-c", "import os, signal; os.kill({pid}, signal.SIGKILL)"],
    [PY, "-c", "import os, signal; os.killpg({pid}, signal.SIGKILL)"],
    [PY, "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
    [PY, "-c", "import os, signal; signal.pidfd_send_signal(os.pidfd_open({pid}), 9)"],
    [PY, "-c", "import ctypes; ctypes.CDLL(None).ptrace(16, {pid}, 0, 0)"],  # PTRACE_ATTACH
    [PY, "-c", "import ctypes; ctypes.CDLL(None).syscall(200, {pid}, 9)"],  # tkill
    [PY, "-c", "import ctypes; ctypes.CDLL(None).syscall(234, {pid}, {pid}, 9)"],  # tgkill
]


def _state(pid: int) -> tuple[bool, int, tuple[int, int], str]:
    """(stopped or dead, nice, RLIMIT_NOFILE, CPU affinity)."""
    with open(f"/proc/{pid}/stat") as stat_file:
        state = stat_file.read().rsplit(")", 1)[1].split()[0]
    affinity = ",".join(map(str, sorted(os.sched_getaffinity(pid))))
    return (
        state in "TtZXx",
        os.getpriority(os.PRIO_PROCESS, pid),
        resource.prlimit(pid, resource.RLIMIT_NOFILE),
        affinity,
    )


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[" ".join(a)[:40] for a in ATTEMPTS])
def test_victim_is_untouched(
    attempt: list[str], victim: tuple[subprocess.Popen[bytes], str]
) -> None:
    process, token = victim
    before = _state(process.pid)
    argv = [a.replace("{pid}", str(process.pid)).replace("{token}", token) for a in attempt]
    outcome = sandboxed(argv, profile=Profile(fork=True))
    assert process.poll() is None, (argv, outcome.stderr)
    assert _state(process.pid) == before, (argv, outcome.stderr)


def test_a_program_may_still_signal_itself() -> None:
    """raise()/abort() and signals to its own group keep working (tools use them)."""
    code = (
        "import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: print('got it'))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\nos.kill(0, 0)"
    )
    outcome = sandboxed([PY, "-c", code])
    assert outcome.stdout.decode().strip() == "got it", outcome.stderr
    assert outcome.exit_code == 0
