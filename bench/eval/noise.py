"""Background noise every real host has, with names drawn like the faults': a process using
about a third of a CPU, another failing to open a missing file 4-5 times a second, an exec a
second, and light mutex contention. None of it is the culprit of any fault."""

from __future__ import annotations

from bench.eval.harness import Ctx
from tests.support.workloads import PROBER

DUTY = """
import sys, time
busy = float(sys.argv[1])
while True:
    end = time.perf_counter() + busy * 0.03
    while time.perf_counter() < end:
        pass
    time.sleep((1 - busy) * 0.03)
"""
TICKER = """
import subprocess, sys, time
child, pause = sys.argv[1], float(sys.argv[2])
while True:
    subprocess.call([child, "-c", "exit 0"])
    time.sleep(pause)
"""
LIGHT_LOCK_C = r"""
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int hold_us, idle_us;
static void *work(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        usleep(hold_us);
        pthread_mutex_unlock(&lock);
        usleep(idle_us);
    }
    return 0;
}
int main(int argc, char **argv) {
    hold_us = argc > 1 ? atoi(argv[1]) : 50;
    idle_us = argc > 2 ? atoi(argv[2]) : 2000;
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], 0, work, 0);
    pthread_join(t[0], 0);
    return 0;
}
"""


def start_noise(ctx: Ctx) -> dict[str, str]:
    """Start the four noise sources; returns what was drawn (names, rates)."""
    cpu, _ = ctx.draw.service()
    opener, word = ctx.draw.service()
    execer, _ = ctx.draw.service()
    child, _ = ctx.draw.service()
    locker, _ = ctx.draw.service()
    busy = ctx.draw.uniform(0.28, 0.38)
    ctx.spawn([ctx.python(cpu), ctx.script(DUTY), str(busy)])
    folder = f"{ctx.draw.choice(('plugins', 'overrides', 'extra'))}.d"
    missing = ctx.path("opt", word, folder, "local.conf")
    rate = ctx.draw.uniform(4.0, 5.0)
    ctx.spawn([ctx.python(opener), ctx.script(PROBER), missing, str(round(1 / rate, 3))])
    every = ctx.draw.uniform(0.9, 1.1)
    ctx.spawn([ctx.python(execer), ctx.script(TICKER), ctx.shell(child), str(every)])
    hold, idle = ctx.draw.integer(30, 120), ctx.draw.integer(1500, 4000)
    ctx.spawn([ctx.c_binary(LIGHT_LOCK_C, locker, "-pthread"), str(hold), str(idle)])
    return {
        "cpu": f"{cpu} ({busy:.0%} of a CPU)",
        "missing_file": f"{opener} opens {missing} {rate:.1f}/s",
        "exec": f"{execer} runs {child} about once a second",
        "mutex": f"{locker} 3 threads, hold {hold} us, idle {idle} us",
        "comms": " ".join((cpu, opener, execer, child, locker)),
    }
