"""Process, CPU, memory and lock faults: crash loops, fork storms, hogs, growth, limits."""

from __future__ import annotations

import resource
from pathlib import Path

from bench.eval.harness import Ctx, Fault, FaultSpec, pids
from tests.support.workloads.scenarios import Truth

SEGV_C = "int main(void) { volatile int *p = 0; *p = 1; return 0; }\n"
SUPERVISOR = """
import subprocess, sys, time
child, pause = sys.argv[1], float(sys.argv[2])
while True:
    subprocess.call([child])
    time.sleep(pause)
"""


def crash_loop(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    sup_comm, _ = ctx.draw.service()
    child = ctx.c_binary(SEGV_C, comm)
    pause = ctx.draw.uniform(0.1, 0.5)
    proc = ctx.spawn([ctx.python(sup_comm), ctx.script(SUPERVISOR), child, str(pause)])
    return Fault(
        truth=lambda: Truth(((comm,), ("SIGSEGV", "signal 11", "segfault", "SEGV"))),
        facts=lambda: Truth(((comm,), ("SIGSEGV", "signal 11", "SEGV"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "supervisor": sup_comm, "pause_s": str(pause)},
    )


def fork_storm(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    pause = ctx.draw.choice(("0.01", "0.02", "0.05"))
    body = ctx.draw.choice(("cat /proc/loadavg", "date +%s", "hostname", "uname -r"))
    script = ctx.script(
        f"while true; do\n  {body} >/dev/null\n  ls / >/dev/null\n  sleep {pause}\ndone\n",
        f"{word}-check.sh",
    )
    proc = ctx.spawn([ctx.shell(comm), script])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,),)),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "body": body, "pause_s": pause},
    )


HOG_C = r"""
#include <pthread.h>
#include <stdlib.h>
static void *spin(void *arg) { (void)arg; volatile unsigned long n = 0; for (;;) n++; return 0; }
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    pthread_t t[64];
    for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], 0, spin, 0);
    pthread_join(t[0], 0);
    return 0;
}
"""
LATENCY_SERVICE = """
import time
while True:
    t = time.perf_counter()
    x = 0
    for i in range(2000):
        x += i
    time.sleep(0.002)
"""


def hog_beside_service(ctx: Ctx) -> Fault:
    comm, _ = ctx.draw.service()
    service, word = ctx.draw.service()
    threads = ctx.draw.integer(2, 4)
    hog = ctx.spawn([ctx.c_binary(HOG_C, comm, "-pthread"), str(threads)])
    ctx.spawn([ctx.python(service), ctx.script(LATENCY_SERVICE)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(hog.pid))),
        facts=lambda: Truth(((comm,),)),
        processes=[hog],
        words={"svc": word},
        drawn={"comm": comm, "threads": str(threads), "victim": service},
    )


GROWER = """
import sys, time
step_mb, pause, cap_mb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
blocks = []
while True:
    if len(blocks) * step_mb < cap_mb:
        blocks.append(bytearray(step_mb * 1024 * 1024))
        for i in range(0, len(blocks[-1]), 4096):
            blocks[-1][i] = 1
    time.sleep(pause)
"""


def memory_growth(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    step = ctx.draw.integer(4, 12)
    pause = ctx.draw.uniform(0.1, 0.3)
    cap = ctx.draw.integer(800, 1500)
    proc = ctx.spawn([ctx.python(comm), ctx.script(GROWER), str(step), str(pause), str(cap)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,),)),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "step_mb": str(step), "pause_s": str(pause), "cap_mb": str(cap)},
    )


THREADER = """
import threading, time, sys
pause = float(sys.argv[1])
def park():
    time.sleep(3600)
while True:
    try:
        threading.Thread(target=park, daemon=True).start()
    except RuntimeError:
        pass
    time.sleep(pause)
"""


def threads(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    counts = [line.split()[1] for line in status.splitlines() if line.startswith("Threads:")]
    return int(counts[0]) if counts else 0


def thread_limit(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    limit = ctx.draw.integer(8, 24)
    pause = ctx.draw.uniform(0.01, 0.1)
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(THREADER), str(pause)],
        uid=ctx.draw.uid(),
        rlimits=((resource.RLIMIT_NPROC, limit),),
    )
    # "can't spawn workers": reported once thread starts fail (the uid's tasks at the limit)
    ctx.wait_for(lambda: threads(proc.pid) >= limit - 1, timeout_s=10)
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,), ("EAGAIN", "Resource temporarily unavailable"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "nproc": str(limit), "pause_s": str(pause)},
    )


ZOMBIE_MAKER = """
import os, sys, time
pause, cap = float(sys.argv[1]), int(sys.argv[2])
n = 0
while True:
    if n < cap:
        if os.fork() == 0:
            os._exit(0)
        n += 1
    time.sleep(pause)
"""


def zombie_pileup(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    pause = ctx.draw.uniform(0.02, 0.1)
    cap = ctx.draw.integer(300, 600)
    proc = ctx.spawn([ctx.python(comm), ctx.script(ZOMBIE_MAKER), str(pause), str(cap)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,),)),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "pause_s": str(pause), "cap": str(cap)},
    )


ALLOCATOR = """
import sys, time
size_mb, pause = int(sys.argv[1]), float(sys.argv[2])
while True:
    try:
        buf = bytearray(size_mb * 1024 * 1024)
        del buf
    except MemoryError:
        pass
    time.sleep(pause)
"""


def enomem_limit(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    limit_mb = ctx.draw.integer(300, 600)
    size = ctx.draw.integer(limit_mb + 100, limit_mb + 400)
    pause = ctx.draw.uniform(0.02, 0.2)
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(ALLOCATOR), str(size), str(pause)],
        rlimits=((resource.RLIMIT_AS, limit_mb * 2**20),),
    )
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), ("ENOMEM", "Cannot allocate memory"))),
        facts=lambda: Truth(((comm,), ("ENOMEM", "Cannot allocate memory"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "as_mb": str(limit_mb), "alloc_mb": str(size)},
    )


LOCK_HOLDER = """
import fcntl, sys, time
with open(sys.argv[1], "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    while True:
        time.sleep(3600)
"""
LOCK_WAITER = """
import fcntl, sys, time
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    time.sleep(0.1)
"""


def flock_held(ctx: Ctx) -> Fault:
    holder_comm, _ = ctx.draw.service()
    comm, word = ctx.draw.service()
    path = ctx.dir("var", "lock") / f"{word}.lock"
    holder = ctx.spawn([ctx.python(holder_comm), ctx.script(LOCK_HOLDER), path])
    ctx.settle(0.4)
    waiter, binary = ctx.script(LOCK_WAITER), ctx.python(comm)
    n = ctx.draw.integer(2, 6)
    for _ in range(n):
        ctx.spawn([binary, waiter, path])
    return Fault(
        truth=lambda: Truth(((holder_comm,), pids(holder.pid), (str(path),))),
        facts=lambda: Truth(((holder_comm,), (str(path),))),
        processes=[holder],
        words={"svc": word},
        drawn={"holder": holder_comm, "waiters": f"{n} x {comm}", "path": str(path)},
    )


FAULTS = [
    FaultSpec(
        "crash_loop_segv",
        "processes",
        "a supervisor respawns a child that dies of SIGSEGV",
        (
            "{svc} keeps restarting",
            "{svc} is crashlooping, no logs",
            "{svc} dies right after start, over and over",
        ),
        crash_loop,
    ),
    FaultSpec(
        "fork_storm",
        "processes",
        "a shell script forks short-lived processes in a tight loop",
        (
            "the {svc} box has high sys CPU and nobody knows why",
            "load is high on the {svc} host but no process stands out in top",
            "{svc} host is sluggish, something is churning",
        ),
        fork_storm,
    ),
    FaultSpec(
        "hog_beside_service",
        "cpu",
        "a multi-threaded C hog (2-4 threads) beside a latency-sensitive service",
        (
            "{svc} latency doubled, nothing changed on our side",
            "{svc} is slow but its own CPU usage is low",
            "p99 on {svc} is terrible since noon",
        ),
        hog_beside_service,
    ),
    FaultSpec(
        "memory_growth",
        "memory",
        "a service's RSS grows by a few MB several times a second, up to about 1 GB (no OOM)",
        (
            "{svc} memory keeps climbing",
            "free memory on the {svc} box is dropping steadily",
            "{svc} is leaking, I think",
        ),
        memory_growth,
    ),
    FaultSpec(
        "thread_limit",
        "processes",
        "a service starts threads until its uid's RLIMIT_NPROC; clone fails with EAGAIN",
        (
            "{svc} can't spawn workers",
            "{svc} says can't start new thread",
            "{svc} stopped picking up jobs",
        ),
        thread_limit,
    ),
    FaultSpec(
        "zombie_pileup",
        "processes",
        "a parent forks children that exit and never reaps them",
        (
            "ps on the {svc} box shows hundreds of defunct processes",
            "process count keeps going up on the {svc} host",
            "{svc} host close to its pid limit?",
        ),
        zombie_pileup,
    ),
    FaultSpec(
        "enomem_limit",
        "memory",
        "a service under a low RLIMIT_AS keeps failing to allocate (ENOMEM)",
        (
            "{svc} fails big requests with out of memory but the box has plenty free",
            "{svc} throws MemoryError on large reports",
            "{svc} can't allocate, host has 20G free",
        ),
        enomem_limit,
    ),
    FaultSpec(
        "flock_held",
        "locks",
        "a process holds an exclusive flock forever; the service's runs queue up behind it",
        (
            "{svc} cron runs pile up and never finish",
            "{svc} jobs hang at start",
            "{svc} stuck, nothing in the logs after 'starting'",
        ),
        flock_held,
    ),
]
