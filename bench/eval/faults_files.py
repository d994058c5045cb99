"""File, filesystem and I/O faults: permissions, a full or read-only filesystem, descriptors,
fsync storms."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess

from bench.eval.harness import Ctx, Fault, FaultSpec, pids
from tests.support.workloads.scenarios import Truth

READER = """
import sys, time
path, pause = sys.argv[1], float(sys.argv[2])
while True:
    try:
        with open(path) as f:
            f.read()
    except OSError:
        pass
    time.sleep(pause)
"""


def config_eacces(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    etc = ctx.dir("etc", word)
    etc.chmod(0o755)
    ctx.path("etc").chmod(0o755)
    stem = ctx.draw.choice(("secrets", "app", word, "settings"))
    path = etc / f"{stem}.{ctx.draw.choice(('yaml', 'conf', 'json'))}"
    path.write_text("token: x\n")
    path.chmod(0o600)  # root's; the service runs as an unprivileged uid
    uid = ctx.draw.uid()
    pause = ctx.draw.uniform(0.02, 0.2)
    proc = ctx.spawn([ctx.python(comm), ctx.script(READER), path, str(pause)], uid=uid)
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(path),))),
        facts=lambda: Truth(((comm,), (str(path),), ("EACCES", "Permission denied"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path), "uid": str(uid), "pause_s": str(pause)},
    )


SPOOLER = """
import os, sys, time
spool, pause = sys.argv[1], float(sys.argv[2])
n = 0
while True:
    n += 1
    try:
        with open(os.path.join(spool, f"batch-{n % 50}.dat"), "ab") as f:
            f.write(os.urandom(65536))
    except OSError:
        pass
    time.sleep(pause)
"""


def disk_full(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    spool = ctx.dir("var", "spool", word)
    size_mb = ctx.draw.integer(4, 16)
    ctx.mount("-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", target=spool)
    filler = spool / f".{ctx.draw.token(6)}"
    with contextlib.suppress(OSError), filler.open("wb") as f:  # full before the service starts
        f.write(b"\0" * (size_mb * 2**20))
    pause = ctx.draw.uniform(0.02, 0.15)
    proc = ctx.spawn([ctx.python(comm), ctx.script(SPOOLER), spool, str(pause)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(spool), "ENOSPC", "No space left"))),
        facts=lambda: Truth(((comm,), ("ENOSPC", "No space left on device"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "mount": str(spool), "size_mb": str(size_mb), "pause_s": str(pause)},
    )


LEAKER = """
import os, sys, time
path, pause = sys.argv[1], float(sys.argv[2])
held = []
while True:
    try:
        held.append(open(path))
    except OSError:
        pass
    time.sleep(pause)
"""


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def fd_exhaustion(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    path = ctx.dir("srv", word) / f"{ctx.draw.choice(('index', 'state', 'journal'))}.db"
    path.write_text("x")
    limit = ctx.draw.integer(32, 128)
    pause = ctx.draw.uniform(0.01, 0.1)
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(LEAKER), path, str(pause)],
        rlimits=((resource.RLIMIT_NOFILE, limit),),
    )
    # "works for a bit, then every request fails": reported once it fails (the leak reaches
    # the limit after limit x pause seconds, up to ~13 s)
    ctx.wait_for(lambda: open_fds(proc.pid) >= limit - 1, timeout_s=20)
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), ("EMFILE", "Too many open files"))),
        facts=lambda: Truth(((comm,), ("EMFILE", "Too many open files"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path), "nofile": str(limit), "pause_s": str(pause)},
    )


WRITER = """
import os, sys, time
folder, pause = sys.argv[1], float(sys.argv[2])
while True:
    try:
        with open(os.path.join(folder, "current.log"), "a") as f:
            f.write("line\\n")
    except OSError:
        pass
    time.sleep(pause)
"""


def read_only_fs(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    source = ctx.dir(".data", word)
    target = ctx.dir("var", "log", word)
    ctx.mount("--bind", str(source), target=target)
    subprocess_ro(target)
    pause = ctx.draw.uniform(0.02, 0.2)
    proc = ctx.spawn([ctx.python(comm), ctx.script(WRITER), target, str(pause)])
    path = target / "current.log"
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(path), str(target)))),
        facts=lambda: Truth(((comm,), (str(path), str(target)), ("EROFS", "Read-only"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "mount": str(target), "pause_s": str(pause)},
    )


def subprocess_ro(target: object) -> None:
    subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True, capture_output=True)


SYNCER = """
import os, sys, time
path, chunk, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
while True:
    os.write(fd, os.urandom(chunk))
    os.fsync(fd)
    n += 1
    if n % 2000 == 0:
        os.ftruncate(fd, 0)
    if pause:
        time.sleep(pause)
"""


def fsync_heavy(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    folder = ctx.dir("data", word)
    path = folder / f"{ctx.draw.choice(('wal', 'journal', 'ledger'))}.{ctx.draw.token(3)}"
    chunk = ctx.draw.integer(512, 8192)
    pause = ctx.draw.choice(("0", "0.001", "0.002"))
    proc = ctx.spawn([ctx.python(comm), ctx.script(SYNCER), path, str(chunk), pause])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid))),
        facts=lambda: Truth(((comm,), ("fsync", "fdatasync"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path), "chunk": str(chunk), "pause_s": pause},
    )


FAULTS = [
    FaultSpec(
        "config_eacces",
        "files",
        "a service running as an unprivileged uid retries reading a root-only config (EACCES)",
        (
            "{svc} can't load its config after the hardening change",
            "{svc} is crashlooping since the ansible run",
            "{svc} won't start, says something about its settings",
        ),
        config_eacces,
    ),
    FaultSpec(
        "disk_full",
        "filesystems",
        "a service appends to a spool on a full tmpfs (ENOSPC)",
        (
            "{svc} can't write its spool, disk?",
            "{svc} is dropping batches",
            "{svc} has been failing writes for an hour",
        ),
        disk_full,
    ),
    FaultSpec(
        "fd_exhaustion",
        "files",
        "a service leaks file descriptors until RLIMIT_NOFILE (EMFILE)",
        (
            "{svc} works for a bit after restart and then every request fails",
            "{svc} stops accepting work after a few minutes",
            "{svc} degrades over time, restart fixes it",
        ),
        fd_exhaustion,
    ),
    FaultSpec(
        "read_only_fs",
        "filesystems",
        "a service appends its log under a read-only bind mount (EROFS)",
        (
            "{svc} stopped writing logs",
            "{svc} log is empty since the maintenance window",
            "{svc} complains it can't write, storage problem?",
        ),
        read_only_fs,
    ),
    FaultSpec(
        "fsync_heavy",
        "io",
        "a writer fsyncs after every small append",
        (
            "{svc} writes are slow",
            "disk latency alarms on the {svc} host",
            "{svc} commit latency went up a lot",
        ),
        fsync_heavy,
    ),
]
