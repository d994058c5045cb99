"""Real faults on a noisy host: the resolution must name the fault's process, not the noise.

Each test starts a real fault whose service the symptom names (with a random name and phrasing),
plus real background noise: an unrelated process failing to open a missing file about 4-5 times
a second, a process burning about a third of a CPU, and a full CPU spinner. The offline planner
runs the real loop; the resolution must name the fault's process (and its errno or signal), with
High or Medium confidence, and must not blame a noise process.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import pytest

from tests.support.workloads import PROBER
from tests.support.workloads.scenarios import (
    Fault,
    Scenario,
    Truth,
    named_binary,
    pid_terms,
    run_scenario,
    running,
    script,
    unique,
)

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]

DUTY = """
import time
while True:
    end = time.perf_counter() + 0.01
    while time.perf_counter() < end:
        pass
    time.sleep(0.02)
"""
SPIN = "while True:\n    pass\n"
SPOOLER = """
import os, sys, time
spool = sys.argv[1]
n = 0
while True:
    n += 1
    try:
        with open(os.path.join(spool, f"batch-{n % 20}.dat"), "ab") as f:
            f.write(os.urandom(32768))
    except OSError:
        pass
    time.sleep(0.05)
"""
SUPERVISOR = """
import subprocess, sys, time
while True:
    subprocess.call([sys.argv[1], "-S", "-c", "import ctypes; ctypes.string_at(0)"])
    time.sleep(0.2)
"""


@contextmanager
def noise(workdir: Path) -> Iterator[list[str]]:
    """The three noise processes; yields their names."""
    names = [unique("cachewarm"), unique("statsd"), unique("indexer")]
    missing = workdir / "opt" / "plugins.d" / "local.conf"
    argvs = [
        [
            str(named_binary(workdir, names[0])),
            str(script(workdir, PROBER, "p.py")),
            str(missing),
            str(round(1 / random.uniform(4.0, 5.0), 3)),
        ],
        [str(named_binary(workdir, names[1])), str(script(workdir, DUTY, "d.py"))],
        [str(named_binary(workdir, names[2])), str(script(workdir, SPIN, "s.py"))],
    ]
    with running(*argvs, settle_s=0.3):
        yield names


@contextmanager
def disk_full(workdir: Path, comm: str) -> Iterator[Fault]:
    spool = workdir / "spool"
    spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(spool)], check=True)
    try:
        with suppress(OSError), (spool / ".fill").open("wb") as fill:
            fill.write(b"\0" * 2**21)  # fills the 1 MiB tmpfs
        binary = named_binary(workdir, comm)
        with noise(workdir), running([str(binary), str(script(workdir, SPOOLER)), str(spool)]) as p:
            yield Fault(
                truth=lambda: Truth(((comm,), pid_terms(p[0].pid), ("ENOSPC",))),
                processes=p,
            )
    finally:
        subprocess.run(["umount", "-l", str(spool)], check=False)


@contextmanager
def crash_loop(workdir: Path, parent: str) -> Iterator[Fault]:
    child = named_binary(workdir, unique("worker"))
    binary = named_binary(workdir, parent)
    with noise(workdir), running([str(binary), str(script(workdir, SUPERVISOR)), str(child)]) as p:
        yield Fault(
            truth=lambda: Truth(((parent,), (child.name,), ("SIGSEGV",))),
            processes=p,
        )


WORDS = ("ledger", "billing", "intake", "relay", "quota", "vault", "orders", "tally")
CASES = [
    ("disk_full", ("{svc} can't write its spool", "{svc} is dropping batches"), disk_full),
    ("crash_loop", ("{svc} keeps crashing", "{svc} is flapping"), crash_loop),
]


@pytest.mark.parametrize(("name", "phrasings", "start"), CASES, ids=[c[0] for c in CASES])
def test_the_fault_not_the_noise(
    name: str,
    phrasings: tuple[str, ...],
    start: Callable[[Path, str], AbstractContextManager[Fault]],
) -> None:
    word = random.choice(WORDS)
    comm = unique(word)
    symptom = random.choice(phrasings).format(svc=word)
    outcome = run_scenario(Scenario(name, symptom, name, lambda workdir: start(workdir, comm)))
    detail = f"symptom: {symptom}\nroot cause: {outcome.root_cause}\n{outcome.ebpf_evidence}"
    assert outcome.missing_in_root_cause == [], detail
    assert outcome.missing_in_evidence == [], detail
    assert outcome.confidence in {"High", "Medium"}, detail
    for noisy in ("cachewarm", "statsd", "indexer"):
        assert f"{noisy}-" not in outcome.root_cause.split("Also failing")[0], detail
