"""Nothing outlives the command, and nothing it does exhausts the host: no daemon, no
background child, no runaway memory, CPU or descriptors."""

from __future__ import annotations

import os
import time

import pytest

from tests.sandbox.conftest import sandboxed
from tests.support.ebpf import scaled
from tests.support.procs import processes_with
from worker.sandbox import Limits, Profile

PY = "/usr/bin/python3"


def _token() -> str:
    whole = 4000 + int.from_bytes(os.urandom(2), "big") % 5000
    return f"{whole}.{int.from_bytes(os.urandom(3), 'big')}"


DAEMONS = [
    ["setsid", "sleep", "{t}"],
    ["setsid", "-f", "sleep", "{t}"],
    ["bash", "-c", "sleep {t} & echo started"],
    ["bash", "-c", "(setsid sleep {t} &); echo started"],
    ["bash", "-c", "nohup sleep {t} >/dev/null 2>&1 & disown"],
    [
        PY,
        "-c",
        "import os\nif os.fork() == 0:\n    os.setsid(); os.execvp('sleep', ['sleep', '{t}'])\n",
    ],
    [PY, "-c", "import os\nif os.fork() == 0:\n    os.execvp('sleep', ['sleep', '{t}'])\n"],
    ["nstat", "-d", "1", "-t", "{t}"],
]


@pytest.mark.parametrize("fork", [False, True], ids=["default", "fork-allowed"])
@pytest.mark.parametrize("form", DAEMONS, ids=[" ".join(f)[:40] for f in DAEMONS])
def test_no_daemon_outlives_the_command(form: list[str], fork: bool) -> None:
    token = _token()
    argv = [a.replace("{t}", token) for a in form]
    outcome = sandboxed(argv, timeout_s=3, profile=Profile(fork=fork))
    left = processes_with(token)
    assert left == [], (argv, outcome)


def test_a_timed_out_command_and_its_children_are_gone() -> None:
    token = _token()
    started = time.monotonic()
    outcome = sandboxed(
        ["bash", "-c", f"sleep {token} & sleep {token}"], timeout_s=1, profile=Profile(fork=True)
    )
    assert outcome.timed_out
    assert time.monotonic() - started < scaled(5)
    assert processes_with(token) == []


def test_fork_bomb_is_refused_without_the_fork_profile() -> None:
    code = "import os\nn = 0\nwhile n < 1000:\n    os.fork(); n += 1\n"
    outcome = sandboxed([PY, "-c", code], timeout_s=5)
    assert outcome.exit_code != 0
    assert b"Operation not permitted" in outcome.stderr


SMALL = Limits(address_space_bytes=512 << 20, cpu_s=1, open_files=64, processes=16)


@pytest.mark.parametrize(
    "argv",
    [
        ["jq", "-n", "[range(1e12)]"],
        [PY, "-c", "x = bytearray(1 << 31)"],
        [PY, "-c", "x = []\nwhile True: x.append(b' ' * (1 << 20))"],
        ["awk", 'BEGIN { s = "xx"; while (1) s = s s }'],
        ["sort", "/dev/zero"],
    ],
    ids=["jq range", "python 2 GiB", "python grow", "awk doubling", "sort /dev/zero"],
)
def test_memory_is_bounded(argv: list[str]) -> None:
    started = time.monotonic()
    outcome = sandboxed(argv, timeout_s=20, limits=SMALL)
    assert outcome.exit_code != 0
    assert not outcome.timed_out, "the address-space limit, not the timeout, must stop it"
    assert time.monotonic() - started < scaled(15)


def test_cpu_time_is_bounded_by_rlimit() -> None:
    started = time.monotonic()
    outcome = sandboxed([PY, "-c", "while True: pass"], timeout_s=20, limits=SMALL)
    assert outcome.exit_code in (-24, -9), outcome  # SIGXCPU, then SIGKILL at the hard limit
    assert not outcome.timed_out
    assert time.monotonic() - started < scaled(10)


def test_open_files_are_bounded() -> None:
    code = (
        "fs = []\ntry:\n    while True: fs.append(open('/dev/null'))\n"
        "except OSError as e: print(len(fs), e.errno)"
    )
    outcome = sandboxed([PY, "-c", code], limits=SMALL)
    count, errno = outcome.stdout.decode().split()
    assert int(count) < 64 and errno == "24", outcome  # EMFILE
