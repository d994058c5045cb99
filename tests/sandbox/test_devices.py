"""Devices and the kernel: no device is opened for writing (an open of /dev/watchdog for write
arms a reboot), the kernel log cannot be written or cleared, no module, BPF program, clock,
hostname or swap changes. seccomp refuses these before any path lookup, so the answer is EPERM
whether or not the device exists here."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.sandbox.conftest import sandboxed

PY = "/usr/bin/python3"


@pytest.mark.parametrize(
    "argv",
    [
        [PY, "-c", "open('/dev/watchdog', 'wb')"],
        [PY, "-c", "open('/dev/watchdog0', 'r+b')"],
        [PY, "-c", "import os; os.open('/dev/watchdog', os.O_WRONLY | os.O_NONBLOCK)"],
        ["dd", "if=/dev/zero", "of=/dev/watchdog", "count=1"],
        ["tee", "/dev/watchdog"],
    ],
    ids=["python wb", "python r+b", "os.open", "dd", "tee"],
)
def test_watchdog_is_never_opened_for_write(argv: list[str]) -> None:
    outcome = sandboxed(argv)
    assert outcome.exit_code != 0
    assert b"Operation not permitted" in outcome.stderr, outcome.stderr


def test_kernel_log_cannot_be_written_or_cleared() -> None:
    token = f"bpfsleuth-sandbox-{os.urandom(4).hex()}"
    attempts = [
        ["bash", "-c", f"echo {token} > /dev/kmsg"],
        ["dmesg", "--clear"],
        ["dmesg", "-n", "1"],
        ["dmesg", "-D"],
    ]
    with open("/proc/sys/kernel/printk") as printk:
        levels = printk.read()
    for argv in attempts:
        outcome = sandboxed(argv)
        assert outcome.exit_code != 0, (argv, outcome)
    log = sandboxed(["dmesg"])
    assert log.exit_code == 0 and log.stdout.strip(), "dmesg still reads after the attempts"
    assert token.encode() not in log.stdout
    with open("/proc/sys/kernel/printk") as printk:
        assert printk.read() == levels  # `dmesg -n 1` did not change the console level


@pytest.mark.parametrize(
    "code",
    [
        "import ctypes; l = ctypes.CDLL(None); print(l.syscall(321, 0, 0, 0))",  # bpf
        "import ctypes; l = ctypes.CDLL(None); print(l.syscall(298, 0, 0, -1, -1, 0))",  # perf
        "import ctypes; l = ctypes.CDLL(None); print(l.syscall(313, -1, b'', 0))",  # finit_module
        "import ctypes; l = ctypes.CDLL(None); print(l.syscall(176, b'x', 0))",  # delete_module
        "import ctypes; l = ctypes.CDLL(None); print(l.sethostname(b'x', 1))",
        "import time; time.clock_settime(time.CLOCK_REALTIME, time.time())",
        "import ctypes; l = ctypes.CDLL(None); print(l.swapoff(b'/dev/zram0'))",
        "import ctypes; l = ctypes.CDLL(None); print(l.reboot(0x4321FEDC))",  # CAD off
        "import ctypes; l = ctypes.CDLL(None); print(l.syscall(250, 0, 0, 0, 0, 0))",  # keyctl
        "import ctypes; l = ctypes.CDLL(None); print(l.unshare(0x10000000))",  # CLONE_NEWUSER
        "import ctypes; l = ctypes.CDLL(None); print(l.unshare(0x40000000))",  # CLONE_NEWNET
        "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))",
        "import resource; resource.prlimit(0, resource.RLIMIT_NOFILE, (8, 8))",
    ],
    ids=[
        "bpf",
        "perf_event_open",
        "finit_module",
        "delete_module",
        "sethostname",
        "clock_settime",
        "swapoff",
        "reboot",
        "keyctl",
        "unshare user",
        "unshare net",
        "setrlimit",
        "prlimit set",
    ],
)
def test_kernel_state_setters_fail(code: str) -> None:
    hostname = socket.gethostname()
    check = (
        "import ctypes, sys\n"
        f"try:\n    {code.replace(chr(10), chr(10) + '    ')}\n"
        "except (OSError, ValueError) as e:\n    print('refused', e); sys.exit(0)\n"
        "sys.exit(ctypes.get_errno() and 0 or 3)\n"
    )
    outcome = sandboxed([PY, "-c", check])
    out = outcome.stdout.decode()
    assert "refused" in out or out.strip().splitlines()[-1] == "-1", (code, out, outcome.stderr)
    assert socket.gethostname() == hostname


def test_terminal_injection_ioctl_is_refused() -> None:
    code = (
        "import fcntl, os, pty, sys, termios\n"
        "master, slave = pty.openpty()\n"
        "try: fcntl.ioctl(slave, termios.TIOCSTI, b'x')\n"
        "except OSError as e: sys.exit(e.errno)\n"
    )
    outcome = sandboxed([PY, "-c", code])
    # openpty opens /dev/ptmx read-write: refused first (EPERM); either way nothing injected.
    assert outcome.exit_code == 1, outcome


def test_time_is_unchanged() -> None:
    before = time.time()
    sandboxed(["date", "-s", "2001-01-01"])
    assert abs(time.time() - before) < 60
