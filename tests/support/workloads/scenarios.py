"""Incident scenarios: a real fault, the symptom as on-call would say it, and the ground truth.

Each scenario starts its fault as real processes with neutral names (a copy of the Python binary
or of /bin/sh under a service-like name, scripts at /tmp/<random>/main.py), so nothing in a
process name or path gives the answer away. `run_scenario` runs the real loop in process (the
offline planner, the real policy and executor, real probes) and checks that the resolution
names every part of the ground truth in both `root_cause` and `ebpf_evidence`.

Used by tests/scenarios/test_scenarios.py and bench/scenarios.py.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from tests.support.ports import free_port
from tests.support.workloads import C_DIR, CONNECTOR, compile_c, spawn, stop

PYTHON = Path(os.path.realpath(sys.executable))
SCENARIO_BUDGET_ITERATIONS = 6


@dataclass(frozen=True)
class Truth:
    """Each group must be named (one of its terms) in both the root cause and the evidence."""

    groups: tuple[tuple[str, ...], ...]

    @staticmethod
    def named(term: str, text: str) -> bool:
        return re.search(rf"(?<![\w/.-]){re.escape(term)}(?![\w-])", text) is not None

    def missing(self, text: str) -> list[tuple[str, ...]]:
        return [g for g in self.groups if not any(self.named(term, text) for term in g)]


@dataclass
class Fault:
    """A started fault: its processes and how to learn the ground truth once the run is over."""

    truth: Callable[[], Truth]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)


@dataclass(frozen=True)
class Scenario:
    name: str
    symptom: str
    fault: str
    start: Callable[[Path], AbstractContextManager[Fault]]


class ScenarioOutcome(BaseModel):
    scenario: str
    passed: bool
    iterations: int
    wall_s: float
    missing_in_root_cause: list[list[str]]
    missing_in_evidence: list[list[str]]
    confidence: str = ""
    root_cause: str = ""
    ebpf_evidence: str = ""
    prompt_tokens_per_step: list[int] = []
    probes: list[str] = []
    note: str = ""


# --- process helpers -----------------------------------------------------------------------------
def named_binary(workdir: Path, name: str, source: Path = PYTHON) -> Path:
    """A copy of `source` called `name` (its comm), in `workdir`."""
    target = workdir / name
    shutil.copy2(source, target)
    return target


def unique(name: str) -> str:
    """`name` plus a short random suffix: two runs of a scenario at once (two test sessions on
    one host) must not take each other's processes for their own. At most 15 characters."""
    return f"{name}-{secrets.token_hex(1)}"[:15]


def script(workdir: Path, text: str, name: str = "main.py") -> Path:
    path = workdir / name
    path.write_text(text)
    return path


@contextmanager
def running(*argvs: list[str], settle_s: float = 0.5) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv in argvs:
            procs.append(spawn(argv))
        time.sleep(settle_s)
        yield procs
    finally:
        for proc in procs:
            stop(proc)


def pid_terms(*pids: int) -> tuple[str, ...]:
    return tuple(f"pid {pid}" for pid in pids)


# --- 1. connection refused -----------------------------------------------------------------------
@contextmanager
def refused_connects(workdir: Path) -> Iterator[Fault]:
    comm = unique("edge-client")
    binary = named_binary(workdir, comm)
    port = free_port()
    with running([str(binary), str(script(workdir, CONNECTOR)), str(port), "0.1"]) as procs:
        pid = procs[0].pid
        yield Fault(
            truth=lambda: Truth(((comm,), pid_terms(pid), (f"127.0.0.1:{port}",))),
            processes=procs,
        )


# --- 2. a service looping on a missing config file -----------------------------------------------
OPENER = """
import sys, time
path = sys.argv[1]
while True:
    try:
        with open(path) as f:
            f.read()
    except OSError:
        time.sleep(0.01)
"""


@contextmanager
def missing_config(workdir: Path) -> Iterator[Fault]:
    comm = unique("svc-worker")
    binary = named_binary(workdir, comm)
    etc = workdir / "etc"
    etc.mkdir()
    (etc / "logging.ini").write_text("[loggers]\nkeys=root\n")
    path = etc / "app.conf"
    with running([str(binary), str(script(workdir, OPENER)), str(path)]) as procs:
        pid = procs[0].pid
        yield Fault(
            truth=lambda: Truth(((comm,), pid_terms(pid), (str(path),))),
            processes=procs,
        )


# --- 3. CPU hogs starving a latency-sensitive process ---------------------------------------------
SPINNER = "while True:\n    pass\n"
TICKER = """
import time
while True:
    time.sleep(0.001)
"""
HOGS = 3


@contextmanager
def cpu_hogs(workdir: Path) -> Iterator[Fault]:
    comm = unique("batchd")
    hog = named_binary(workdir, comm)
    api = named_binary(workdir, unique("api-srv"))
    spin = script(workdir, SPINNER, "spin.py")
    tick = script(workdir, TICKER, "tick.py")
    argvs = [[str(hog), str(spin)] for _ in range(HOGS)] + [[str(api), str(tick)]]
    with running(*argvs, settle_s=1.0) as procs:
        hog_pids = [p.pid for p in procs[:HOGS]]
        yield Fault(truth=lambda: Truth(((comm,), pid_terms(*hog_pids))), processes=procs)


# --- 4. futex lock contention in a multi-threaded C program --------------------------------------
# Eight threads holding one mutex 200 us each (its defaults); the text is what bench/eval builds.
LOCKER_C = (C_DIR / "mutex_contention.c").read_text()


@contextmanager
def lock_contention(workdir: Path) -> Iterator[Fault]:
    comm = unique("qworker")
    binary = compile_c("mutex_contention.c", workdir, comm, flags=("-O1", "-pthread"))
    with running([str(binary)]) as procs:
        pid = procs[0].pid
        yield Fault(truth=lambda: Truth(((comm,), pid_terms(pid))), processes=procs)


# --- 5. an exec storm: a parent respawning a crashing child --------------------------------------
RESPAWNER = """
import subprocess, sys, time
child, job = sys.argv[1], sys.argv[2]
while True:
    subprocess.call([child, job], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.15)
"""


@contextmanager
def exec_storm(workdir: Path) -> Iterator[Fault]:
    comm, child_comm = unique("svc-runner"), unique("jobd")
    parent = named_binary(workdir, comm)
    child = named_binary(workdir, child_comm, Path(os.path.realpath("/bin/sh")))
    job = script(workdir, "echo starting\nexit 3\n", "job.sh")
    with running([str(parent), str(script(workdir, RESPAWNER)), str(child), str(job)]) as procs:
        pid = procs[0].pid
        yield Fault(
            truth=lambda: Truth(((comm,), pid_terms(pid), (child_comm,), ("code 3", "exit 3"))),
            processes=procs,
        )


# --- 6. DNS queries to a resolver that never answers ---------------------------------------------
ASKER = """
import random, socket, struct, sys, time
server, names = sys.argv[1], sys.argv[2:]

def query(name):
    head = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return head + labels + b"\\0" + struct.pack(">HH", 1, 1)

while True:
    for name in names:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.6)
        s.sendto(query(name), (server, 53))
        try:
            s.recvfrom(512)
        except OSError:
            pass
        s.close()
"""


def silent_resolver() -> socket.socket:
    """A UDP socket on port 53 that never answers: 127.0.0.1 when free, else another loopback."""
    candidates = ["127.0.0.1"] + [f"127.0.{secrets.randbelow(200) + 20}.1" for _ in range(5)]
    for address in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((address, 53))
            return sock
        except OSError:
            sock.close()
    raise RuntimeError("no loopback address with UDP port 53 free")


@contextmanager
def dns_blackhole(workdir: Path) -> Iterator[Fault]:
    comm = unique("edge-agent")
    binary = named_binary(workdir, comm)
    name = f"orders-{secrets.token_hex(2)}.corp.internal"
    with ExitStack() as stack:
        resolver = stack.enter_context(silent_resolver())
        server = resolver.getsockname()[0]
        procs = stack.enter_context(
            running([str(binary), str(script(workdir, ASKER)), server, name])
        )
        pid = procs[0].pid
        yield Fault(
            truth=lambda: Truth(((comm,), pid_terms(pid), (f"{server}:53",), (name,))),
            processes=procs,
        )


# --- 7. an OOM kill in a memory-limited cgroup ---------------------------------------------------
LIMIT_BYTES = 64 * 2**20
LAUNCHER = """
import subprocess, sys, time
loader, job, procs_file, pids_file = sys.argv[1:5]

def join():
    with open(procs_file, "w") as f:
        f.write("0")

while True:
    child = subprocess.Popen([loader, job], preexec_fn=join)
    with open(pids_file, "a") as f:
        f.write(f"{child.pid}\\n")
    child.wait()
    time.sleep(0.5)
"""
GROWER = """
import time
blocks = []
while True:
    blocks.append(b"x" * (4 * 1024 * 1024))
    time.sleep(0.03)
"""


class NoMemoryCgroup(RuntimeError):
    """Neither a cgroup v2 memory controller nor a v1 memory hierarchy is writable here."""


def memory_cgroup(name: str) -> tuple[Path, Path]:
    """A fresh limited memory cgroup: (its directory, its cgroup.procs). v2 when the unified
    root has the memory controller (memory.max, swap off), else the v1 hierarchy."""
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        path = v2 / name
        path.mkdir()
        (path / "memory.max").write_text(str(LIMIT_BYTES))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        return path, path / "cgroup.procs"
    v1 = Path("/sys/fs/cgroup/memory")
    if not os.access(v1 / "memory.limit_in_bytes", os.R_OK) or not os.access(v1, os.W_OK):
        raise NoMemoryCgroup("no writable memory cgroup (v2 memory.max or v1) on this host")
    path = v1 / name
    path.mkdir()
    (path / "memory.limit_in_bytes").write_text(str(LIMIT_BYTES))
    return path, path / "cgroup.procs"


def remove_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)


@contextmanager
def oom_kill(workdir: Path) -> Iterator[Fault]:
    name = f"grp-{secrets.token_hex(3)}"
    cgroup, procs_file = memory_cgroup(name)
    comm = unique("svc-loader")
    launcher = named_binary(workdir, unique("svc-launch"))
    loader = named_binary(workdir, comm)
    pids_file = workdir / "children"
    pids_file.touch()
    argv = [
        str(launcher),
        str(script(workdir, LAUNCHER)),
        str(loader),
        str(script(workdir, GROWER, "job.py")),
        str(procs_file),
        str(pids_file),
    ]

    def truth() -> Truth:
        victims = [int(line) for line in pids_file.read_text().split()]
        return Truth(((comm,), pid_terms(*victims), (f"/{name}",)))

    try:
        with running(argv) as procs:
            yield Fault(truth=truth, processes=procs)
    finally:
        for pid in procs_file.read_text().split() if procs_file.exists() else []:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        remove_cgroup(cgroup)


SCENARIOS = [
    Scenario(
        "connection_refused",
        "the app keeps saying it can't reach its backend",
        "a client connects 10 times a second to a port nothing listens on",
        refused_connects,
    ),
    Scenario(
        "missing_config",
        "the service is slow to start and logs are full of config errors",
        "a service retries opening a config file that does not exist, every 10 ms",
        missing_config,
    ),
    Scenario(
        "cpu_starvation",
        "latency spikes on the api box",
        "three spinning processes on a 2-core host starve a process that wakes every ms",
        cpu_hogs,
    ),
    Scenario(
        "lock_contention",
        "workers are stuck",
        "8 threads of a C program serialise on one pthread mutex held across a sleep",
        lock_contention,
    ),
    Scenario(
        "exec_storm",
        "the job keeps restarting",
        "a parent respawns a shell script that exits with code 3, about 6 times a second",
        exec_storm,
    ),
    Scenario(
        "dns_timeouts",
        "name lookups hang",
        "a client sends DNS queries to a UDP port 53 socket that never answers",
        dns_blackhole,
    ),
    Scenario(
        "oom_kill",
        "the process disappeared",
        "a loader grows past its cgroup's 64 MiB limit and is OOM-killed; a launcher restarts it",
        oom_kill,
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}


HOST_LOCK = Path("/tmp/bpfsleuth-scenarios.lock")


@contextmanager
def host_turn() -> Iterator[None]:
    """One scenario at a time on this host, across test sessions: a fault is host-wide (CPU
    starvation, OOM kills, UDP port 53), and two sessions running the same scenario at once
    would each see the other's fault too."""
    import fcntl

    with HOST_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_scenario(scenario: Scenario, workdir: Path | None = None) -> ScenarioOutcome:
    """Start the fault, investigate offline with the real loop, stop the fault, judge."""
    with host_turn():
        return _run_scenario(scenario, workdir)


def _run_scenario(scenario: Scenario, workdir: Path | None) -> ScenarioOutcome:
    from worker.backends.offline.planner import OfflineBackend
    from worker.loop.investigation import Budgets
    from worker.loop.run import run_investigation

    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="w", dir="/tmp")) if workdir is None else workdir
    try:
        with scenario.start(root) as fault:
            started = time.monotonic()
            inv = run_investigation(
                scenario.symptom,
                ["scenario-host"],
                OfflineBackend(),
                budgets=Budgets(max_iterations=SCENARIO_BUDGET_ITERATIONS),
            )
            wall = time.monotonic() - started
            note = "" if fault.alive() else "the fault's process exited during the run"
            truth = fault.truth()
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    resolution = inv.resolution
    root_cause = resolution.root_cause if resolution else ""
    evidence = resolution.ebpf_evidence if resolution else ""
    missing_rc = truth.missing(root_cause)
    missing_ev = truth.missing(evidence)
    return ScenarioOutcome(
        scenario=scenario.name,
        passed=resolution is not None and not missing_rc and not missing_ev,
        iterations=inv.step,
        wall_s=round(wall, 2),
        missing_in_root_cause=[list(g) for g in missing_rc],
        missing_in_evidence=[list(g) for g in missing_ev],
        confidence=resolution.confidence if resolution else "",
        root_cause=root_cause,
        ebpf_evidence=evidence,
        prompt_tokens_per_step=[t.usage.input_tokens for t in inv.turns],
        probes=[
            f"step {r.step} {key}: {p.error or p.summary}"[:300]
            for r in inv.results
            for key, p in r.ebpf_results.items()
        ],
        note=note,
    )
