"""What a fault is made of, and the host-side helpers that start and always undo it.

A `Ctx` is one scenario run: a fresh /tmp/w<random> directory, the run's `Draw`, and an
`ExitStack` every started process, mount and cgroup registers its undo on. The runner closes
it after the investigation, on failure and on Ctrl-C (SIGTERM is turned into the same path).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.eval.draw import Draw
from tests.support.workloads.scenarios import PYTHON, Truth, named_binary, stop

SH = Path(os.path.realpath("/bin/sh"))
SETTLE_S = 0.8


@dataclass
class Fault:
    """A started fault: who to blame (`truth`), what the model must have been shown (`facts`),
    the words a symptom may use, and what was drawn (for the record and for replay)."""

    truth: Callable[[], Truth]
    facts: Callable[[], Truth]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    words: dict[str, str] = field(default_factory=dict)
    drawn: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)


@dataclass(frozen=True)
class FaultSpec:
    name: str
    area: str
    description: str
    phrasings: tuple[str, ...]
    start: Callable[[Ctx], Fault]


def pids(*values: int) -> tuple[str, ...]:
    return tuple(f"pid {v}" for v in values)


class Ctx:
    """One scenario run on this host: its directory, its randomness, its undo stack."""

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        self.stack = ExitStack()
        self.spawned: list[subprocess.Popen[bytes]] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
        self.workdir.chmod(0o755)  # faults running as an unprivileged uid exec from here
        self.stack.callback(shutil.rmtree, self.workdir, True)

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Ctx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def settle(self, seconds: float = SETTLE_S) -> None:
        time.sleep(seconds)

    def wait_for(self, ready: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until `ready()` (a fault that takes a while to show, such as a leak reaching
        its limit, is in its failing state before the symptom is reported); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(poll_s)
        return ready()

    # --- files and binaries ---
    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)

    def dir(self, *parts: str) -> Path:
        path = self.path(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def script(self, text: str, name: str | None = None) -> Path:
        path = self.path(name or f"{self.draw.token(6)}.py")
        path.write_text(text)
        path.chmod(0o755)
        return path

    def python(self, comm: str) -> Path:
        """A copy of the Python binary called `comm`."""
        return named_binary(self.workdir, comm, PYTHON)

    def shell(self, comm: str) -> Path:
        return named_binary(self.workdir, comm, SH)

    def c_binary(self, source: str, comm: str, *flags: str) -> Path:
        src = self.path(f"{self.draw.token(6)}.c")
        src.write_text(source)
        binary = self.path(comm)
        subprocess.run(
            ["gcc", "-O1", *flags, "-o", str(binary), str(src)], check=True, capture_output=True
        )
        return binary

    # --- processes ---
    def spawn(
        self,
        argv: list[str | Path],
        *,
        uid: int | None = None,
        rlimits: tuple[tuple[int, int], ...] = (),
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in its own session; SIGKILLed (its whole group) when the run ends."""

        def before_exec() -> None:
            for which, value in rlimits:
                resource.setrlimit(which, (value, value))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=before_exec if (uid is not None or rlimits) else None,
            cwd=cwd,
        )
        self.stack.callback(stop, proc)
        self.spawned.append(proc)
        return proc

    def kill_pids_in(self, pids_file: Path) -> None:
        """At the end, SIGKILL every pid listed in `pids_file` (children that left the group)."""

        def kill() -> None:
            text = pids_file.read_text() if pids_file.exists() else ""
            for line in text.split():
                with suppress(ProcessLookupError, ValueError, PermissionError):
                    os.kill(int(line), signal.SIGKILL)

        self.stack.callback(kill)

    # --- mounts ---
    def mount(self, *args: str, target: Path) -> None:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
        self.stack.callback(unmount, target)


def unmount(target: Path) -> None:
    for _ in range(20):
        done = subprocess.run(["umount", str(target)], capture_output=True)
        if done.returncode == 0 or not is_mounted(target):
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def is_mounted(target: Path) -> bool:
    wanted = str(target)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == wanted for line in f)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def session_members(leaders: list[int]) -> list[int]:
    """Every live process in the sessions these pids lead (a fault's processes and children)."""
    wanted, found = set(leaders), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) in wanted and fields[0] != "Z":  # field 6 (session) and state
            found.append(int(entry))
    return found
