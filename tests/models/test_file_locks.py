"""file_locks: a process holding a flock that the named service's runs wait on is the finding,
from the real `lslocks` output of real locks (no kernel probe needed): the holder (comm, pid)
and the lock's path are named, High or Medium; an unrelated pile-up (another program's waiters)
stays Low when the symptom names a process that exists. Names, paths and counts are drawn at
random on each run; a second, unrelated lock with waiters is held beside it."""

from __future__ import annotations

import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.test_relevance import evidence, service
from worker.analysis.analyzers.file_locks import COMMAND_ID, parse
from worker.backends.offline.planner import conclude, findings_for

LSLOCKS = "lslocks --raw -o COMMAND,PID,TYPE,MODE,BLOCKER,PATH"
HOLD = """
import fcntl, sys, time
with open(sys.argv[1], "a") as f:
    with open("/proc/self/comm", "w") as c:
        c.write(sys.argv[2])
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(60)
"""


class Locks:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[str]] = []

    def hold(self, path: Path, comm: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), comm], stdout=subprocess.PIPE, text=True
        )
        self.procs.append(proc)
        return proc

    def pile(self, comm: str, waiter: str, waiters: int) -> tuple[subprocess.Popen[str], Path]:
        path = self.folder / f"{secrets.token_hex(4)}.lock"
        holder = self.hold(path, comm)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for _ in range(waiters):
            self.hold(path, waiter)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = parse(lslocks())
            if sum(1 for r in rows if r.blocker == holder.pid) >= waiters:
                break
            time.sleep(0.05)
        return holder, path


def lslocks() -> str:
    return subprocess.run(LSLOCKS.split(), capture_output=True, text=True, check=True).stdout


@pytest.fixture
def locks() -> Iterator[Locks]:
    with tempfile.TemporaryDirectory() as folder:
        made = Locks(Path(folder))
        try:
            yield made
        finally:
            for proc in made.procs:
                proc.kill()
                proc.wait()


def test_the_holder_of_the_named_services_lock_is_named(locks: Locks) -> None:
    holder_comm, _ = service()
    waiter, word = service()
    other_holder, _ = service()
    other_waiter, _ = service()
    locks.pile(other_holder, other_waiter, random.randint(2, 5))  # unrelated, maybe bigger
    holder, path = locks.pile(holder_comm, waiter, random.randint(2, 6))
    symptom = random.choice(
        [f"{word} cron runs pile up and never finish", f"{word} jobs hang at start"]
    )
    shown = evidence(symptom, commands={COMMAND_ID: lslocks()})
    resolution = conclude(shown)
    assert f"{holder_comm} (pid {holder.pid})" in resolution.root_cause, resolution.root_cause
    assert str(path) in resolution.root_cause and str(path) in resolution.ebpf_evidence
    assert resolution.confidence in {"High", "Medium"}


def test_an_unrelated_pile_up_stays_low(locks: Locks) -> None:
    holder_comm, _ = service()
    waiter, _ = service()
    named, word = service()
    locks.pile(holder_comm, waiter, random.randint(2, 5))
    listing = f"  PID COMMAND\n{random.randint(300, 9000)} {named}\n"
    shown = evidence(
        f"{word} keeps restarting", commands={COMMAND_ID: lslocks(), "top_cpu": listing}
    )
    ranked = findings_for(shown)
    assert ranked and ranked[0].analyzer == "file_locks"
    assert conclude(shown).confidence == "Low"


def test_parse_keeps_empty_fields_and_spaces() -> None:
    text = (
        "COMMAND PID TYPE MODE BLOCKER PATH\n"
        "my\\x20job 12 FLOCK WRITE* 7 /var/lock/a\\x20b.lock\n"
        "holder 7 POSIX WRITE  /var/lock/a\\x20b.lock\n"
        "(undefined) -1 OFDLCK READ  \n"
    )
    rows = parse(text)
    assert [(r.comm, r.pid, r.blocker, r.path) for r in rows[:2]] == [
        ("my job", 12, 7, "/var/lock/a b.lock"),
        ("holder", 7, None, "/var/lock/a b.lock"),
    ]


def test_an_unrelated_pile_up_is_not_a_stuck_job_of_another_kind(locks: Locks) -> None:
    """ "Never finishes, keeps starting over" fits a restart loop as well as a lock: with no
    process named, a pile-up of other programs' waiters is only a weak lead."""
    holder_comm, _ = service()
    waiter, _ = service()
    locks.pile(holder_comm, waiter, random.randint(3, 7))
    symptom = "the batch job never finishes, it keeps starting over"
    assert conclude(evidence(symptom, commands={COMMAND_ID: lslocks()})).confidence == "Low"
