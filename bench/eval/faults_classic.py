"""The seven scenarios of tests/support/workloads/scenarios.py, with every name and value drawn.

Their fault programs are imported from there; only the names, paths, ports and phrasings
change with each run.
"""

from __future__ import annotations

import socket

from bench.eval.harness import Ctx, Fault, FaultSpec, pids
from tests.support.workloads import scenarios as w
from tests.support.workloads.scenarios import Truth


def refused(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    port = ctx.draw.free_port()
    pause = ctx.draw.uniform(0.05, 0.25)
    proc = ctx.spawn([ctx.python(comm), ctx.script(w.CONNECTOR), str(port), str(pause)])
    addr = f"127.0.0.1:{port}"
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (addr,))),
        facts=lambda: Truth(((comm,), (addr,))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "port": str(port), "pause_s": str(pause)},
    )


def missing_config(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    etc = ctx.dir(ctx.draw.word(), "etc", word)
    (etc / "logging.ini").write_text("[loggers]\nkeys=root\n")
    path = etc / f"{word}.{ctx.draw.choice(('conf', 'yaml', 'toml', 'ini'))}"
    proc = ctx.spawn([ctx.python(comm), ctx.script(w.OPENER), str(path)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(path),))),
        facts=lambda: Truth(((comm,), (str(path),))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path)},
    )


def cpu_hogs(ctx: Ctx) -> Fault:
    comm, _ = ctx.draw.service()
    api, word = ctx.draw.service()
    hog, spin = ctx.python(comm), ctx.script(w.SPINNER)
    n = ctx.draw.integer(2, 4)
    hogs = [ctx.spawn([hog, spin]) for _ in range(n)]
    ctx.spawn([ctx.python(api), ctx.script(w.TICKER)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(*(p.pid for p in hogs)))),
        facts=lambda: Truth(((comm,),)),
        processes=hogs,
        words={"svc": word},
        drawn={"comm": comm, "hogs": str(n), "victim": api},
    )


def lock_contention(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    binary = ctx.c_binary(w.LOCKER_C, comm, "-pthread")
    proc = ctx.spawn([binary])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,),)),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm},
    )


RESPAWNER = """
import subprocess, sys, time
child, job, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
while True:
    subprocess.call([child, job], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(pause)
"""


def exec_storm(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    child_comm, _ = ctx.draw.service()
    code = ctx.draw.integer(2, 9)
    job = ctx.script(f"echo starting\nexit {code}\n", "job.sh")
    pause = ctx.draw.uniform(0.1, 0.25)
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(RESPAWNER), ctx.shell(child_comm), job, str(pause)]
    )
    return Fault(
        truth=lambda: Truth(
            ((comm,), pids(proc.pid), (child_comm,), (f"code {code}", f"exit {code}"))
        ),
        facts=lambda: Truth(((comm,), (child_comm,))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "child": child_comm, "exit_code": str(code)},
    )


def silent_resolver(ctx: Ctx) -> socket.socket:
    """A UDP socket on port 53 that never answers, on a drawn loopback address."""
    for _ in range(20):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((ctx.draw.loopback(), 53))
        except OSError:
            sock.close()
            continue
        ctx.stack.callback(sock.close)
        return sock
    raise RuntimeError("no loopback address with UDP port 53 free")


def dns_blackhole(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    name = ctx.draw.hostname()
    server = silent_resolver(ctx).getsockname()[0]
    proc = ctx.spawn([ctx.python(comm), ctx.script(w.ASKER), server, name])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (f"{server}:53",), (name,))),
        facts=lambda: Truth(((comm,), (f"{server}:53", server), (name,))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "server": server, "name": name},
    )


def oom_kill(ctx: Ctx) -> Fault:
    group = f"{ctx.draw.word()}-{ctx.draw.token(5)}"
    cgroup, procs_file = w.memory_cgroup(group)
    ctx.stack.callback(w.remove_cgroup, cgroup)
    ctx.kill_pids_in(procs_file)
    comm, word = ctx.draw.service()
    launcher_comm, _ = ctx.draw.service()
    pids_file = ctx.path("children")
    pids_file.touch()
    proc = ctx.spawn(
        [
            ctx.python(launcher_comm),
            ctx.script(w.LAUNCHER),
            ctx.python(comm),
            ctx.script(w.GROWER),
            procs_file,
            pids_file,
        ]
    )

    def truth() -> Truth:
        victims = [int(line) for line in pids_file.read_text().split()]
        return Truth(((comm,), pids(*victims), (f"/{group}",)))

    return Fault(
        truth=truth,
        facts=lambda: Truth(((comm,), (f"/{group}",))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "cgroup": group, "launcher": launcher_comm},
    )


FAULTS = [
    FaultSpec(
        "connection_refused",
        "network",
        "a client connects several times a second to a loopback port nothing listens on",
        (
            "{svc} can't reach its backend",
            "{svc} keeps erroring out since the deploy",
            "getting a ton of errors from {svc}, upstream down?",
            "the app keeps saying it can't reach its backend",
        ),
        refused,
    ),
    FaultSpec(
        "missing_config",
        "files",
        "a service retries opening a config file that does not exist, every 10 ms",
        (
            "{svc} is slow to start and logs are full of config errors",
            "{svc} won't come up after the rollout",
            "something wrong with {svc} config? it never gets ready",
        ),
        missing_config,
    ),
    FaultSpec(
        "cpu_starvation",
        "cpu",
        "spinning processes (2-4) starve a process that wakes every ms",
        (
            "latency spikes on the {svc} box",
            "{svc} p99 went through the roof, box feels sluggish",
            "everything on this host is slow today",
        ),
        cpu_hogs,
    ),
    FaultSpec(
        "lock_contention",
        "locks",
        "8 threads of a C program serialise on one pthread mutex held across a sleep",
        (
            "{svc} workers are stuck",
            "{svc} throughput dropped to nothing but CPU is idle",
            "queue is backing up, {svc} seems wedged",
        ),
        lock_contention,
    ),
    FaultSpec(
        "exec_storm",
        "processes",
        "a parent respawns a shell script that exits with a non-zero code, 4-10 times a second",
        (
            "the {svc} job keeps restarting",
            "{svc} seems to be flapping",
            "the batch job never finishes, it keeps starting over",
        ),
        exec_storm,
    ),
    FaultSpec(
        "dns_timeouts",
        "dns",
        "a client sends DNS queries to a UDP port 53 socket that never answers",
        (
            "name lookups hang on {svc}",
            "{svc} is super slow to connect to anything, DNS?",
            "requests from {svc} stall for seconds before doing anything",
        ),
        dns_blackhole,
    ),
    FaultSpec(
        "oom_kill",
        "memory",
        "a loader grows past its cgroup's 64 MiB limit and is OOM-killed; a launcher restarts it",
        (
            "{svc} process disappeared",
            "{svc} keeps dying with no error in its log",
            "pods for {svc} restart every few seconds",
        ),
        oom_kill,
    ),
]
