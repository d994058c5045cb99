"""Files: whatever a command's arguments say, nothing under a watched tree changes.

Each form runs in the sandbox against a fresh random tree; the tree (names, modes, owners,
sizes, mtimes, contents) must be byte-for-byte what it was, and no file may appear. Every form
runs twice: with every layer, and with Landlock off (seccomp, capabilities and rlimits alone),
so the seccomp filter is shown to hold on its own. On a kernel without Landlock (before 5.13) the
"all layers" run is the seccomp run again: the tree must still be unchanged, and only the check
that Landlock was applied is skipped, naming the kernel's lack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox.conftest import require_landlock, sandboxed, snapshot
from worker.sandbox import Profile

PY = "/usr/bin/python3"

# {file}: the existing file, {dir}: its directory, {new}: a path that must not come to exist.
FORMS: list[list[str]] = [
    ["gzip", "-S", "c", "{file}"],
    ["gzip", "{file}"],
    ["sed", "-i", "s/[0-9a-f]/X/g", "{file}"],
    ["sed", "-n", "w {new}", "{file}"],
    ["cp", "{file}", "{new}"],
    ["cp", "/etc/hostname", "{file}"],
    ["mv", "{file}", "{new}"],
    ["rm", "-f", "{file}"],
    ["rm", "-rf", "{dir}"],
    ["touch", "{new}"],
    ["touch", "-d", "2001-01-01", "{file}"],
    ["dd", "if=/dev/zero", "of={file}", "bs=1", "count=4", "conv=notrunc"],
    ["dd", "if={file}", "of={new}"],
    ["tee", "{file}"],
    ["tee", "-a", "{file}"],
    ["sort", "-o", "{file}", "{file}"],
    ["awk", 'BEGIN { system("touch {new}") }'],
    ["awk", 'BEGIN { print "x" > "{new}"; print "y" >> "{file}" }'],
    ["find", "{dir}", "-delete"],
    ["find", "{dir}", "-name", "*.log", "-exec", "rm", "{}", ";"],
    ["mkdir", "{new}"],
    ["ln", "-s", "{file}", "{new}"],
    ["ln", "{file}", "{new}"],
    ["chmod", "000", "{file}"],
    ["chown", "65534:65534", "{file}"],
    ["chattr", "+A", "{file}"],
    ["truncate", "-s", "0", "{file}"],
    ["shred", "-u", "{file}"],
    ["mkfifo", "{new}"],
    ["mknod", "{new}", "c", "1", "3"],
    ["install", "-m", "755", "{file}", "{new}"],
    ["split", "-l", "1", "{file}", "{new}"],
    ["tar", "-cf", "{new}", "{file}"],
    ["bash", "-c", "echo x > {file}; echo y >> {file}; echo z > {new}; : > {file}"],
    ["bash", "-c", "exec 3<>{file}; echo x >&3"],
    [PY, "-c", "open('{file}', 'r+').write('x')"],
    [PY, "-c", "import os; os.rename('{file}', '{new}')"],
    [PY, "-c", "import os; os.utime('{file}', (0, 0))"],
    [PY, "-c", "import os; os.setxattr('{file}', 'user.x', b'1')"],
    [PY, "-c", "import os; os.truncate('{file}', 0)"],
    [PY, "-c", "import os; os.open('{dir}', os.O_TMPFILE | os.O_WRONLY)"],
    [PY, "-c", "import socket; socket.socket(socket.AF_UNIX).bind('{new}')"],
    [PY, "-c", "import socket; socket.socketpair()[0].bind('{new}')"],
    [PY, "-c", "import os; os.mkfifo('{new}')"],
]

LANDLOCK_OFF = Profile(fork=True, landlock=False)


def _fill(argv: list[str], directory: Path) -> list[str]:
    file = next(directory.iterdir())
    new = directory / "created-by-the-sandboxed-command"
    return [
        arg.replace("{file}", str(file)).replace("{dir}", str(directory)).replace("{new}", str(new))
        for arg in argv
    ]


@pytest.mark.parametrize("landlock", [True, False], ids=["all-layers", "seccomp-without-landlock"])
@pytest.mark.parametrize("form", FORMS, ids=[" ".join(f)[:40] for f in FORMS])
def test_form_changes_nothing(form: list[str], landlock: bool, target: Path) -> None:
    before = snapshot(target)
    argv = _fill(form, target)
    outcome = sandboxed(argv, profile=Profile(fork=True) if landlock else LANDLOCK_OFF)
    assert snapshot(target) == before, (argv, outcome.stderr)
    assert outcome.sandbox.startswith("seccomp") and "+caps(" in outcome.sandbox, outcome
    assert "rlimits" in outcome.sandbox and "nnp" in outcome.sandbox, outcome
    if not landlock:
        assert "landlock" not in outcome.sandbox
        return
    require_landlock(1, "applying Landlock's read-only filesystem")
    assert "landlock" in outcome.sandbox


def test_a_write_to_any_file_fails_with_efbig_not_a_signal() -> None:
    """RLIMIT_FSIZE is 0 and SIGXFSZ ignored: even an anonymous file (memfd, which needs no
    open) cannot grow, and the writer gets EFBIG rather than being killed."""
    code = (
        "import errno, os, sys\n"
        "fd = os.memfd_create('x')\n"
        "try: os.write(fd, b'x')\n"
        "except OSError as e: sys.exit(e.errno)\n"
    )
    outcome = sandboxed([PY, "-c", code])
    assert outcome.exit_code == 27, outcome  # EFBIG, not -SIGXFSZ


def test_shared_memory_and_queues_cannot_be_created_or_removed() -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "r1 = libc.shmget(0, 4096, 0o1600)\n"  # IPC_PRIVATE | IPC_CREAT
        "e1 = ctypes.get_errno()\n"
        "r2 = libc.msgget(0x5eed, 0o1600)\n"
        "e2 = ctypes.get_errno()\n"
        "print(r1, e1, r2, e2)\n"
    )
    outcome = sandboxed([PY, "-c", code])
    assert outcome.stdout.decode().split() == ["-1", "1", "-1", "1"], outcome.stderr  # EPERM
