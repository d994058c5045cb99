"""What a failing system call means, errno by errno, and what to do about it.

One row per errno (or per errno and kind of object: ENOENT on a unix socket is a missing server,
not a missing file): the meaning in words (`{obj}` is the path or address, `{call}` the system
call), the words people use for it in a symptom (the relevance themes), how unusual it is for a
healthy program (`weight`: EAGAIN from non-blocking I/O is normal, ENOSPC never is) and the
resolution plan (`{comm}`, `{pid}`, `{obj}` filled in).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    meaning: str
    themes: tuple[str, ...]
    plan: tuple[str, ...]
    weight: float = 1.0
    label: str = ""  # strerror text, for the root cause


_FILE_THEMES = ("file", "config", "setting", "missing", "not found", "can't find", "load")
_NET_THEMES = ("connect", "reach", "backend", "upstream", "socket", "talk to", "unavailable")
_WRITE_THEMES = ("write", "writing", "log", "spool", "save", "persist", "storage", "disk")

TABLE: dict[str, Explanation] = {
    "EACCES": Explanation(
        "{obj} is not accessible to it: permission denied ({call})",
        ("permission", "denied", "access", "forbidden", "hardening", "config", "setting", "can't"),
        (
            "Check the owner and mode of {obj} and its directories (`ls -ld`, `namei -l {obj}`) "
            "against the user {comm} runs as (`ps -o user= -p {pid}`).",
            "Grant that user read access (group membership or mode), or run {comm} as the "
            "intended user; revert the change that tightened the permissions.",
            "Check SELinux/AppArmor denials in the audit log if the modes look right.",
        ),
        label="Permission denied",
    ),
    "EPERM": Explanation(
        "it is not allowed to do {call} on {obj}: operation not permitted",
        ("permission", "not permitted", "denied", "privilege", "capabilit"),
        (
            "Check the capabilities, seccomp/LSM profile and user of {comm} (`grep Cap "
            "/proc/{pid}/status`).",
            "Grant the missing privilege narrowly, or change {comm} to not need it.",
        ),
        label="Operation not permitted",
    ),
    "ENOSPC": Explanation(
        "the filesystem holding {obj} is full: no space left on device ({call})",
        ("disk", "full", "space", "write", "spool", "storage", "dropping", "failing writes"),
        (
            "Find the full filesystem (`df -h`, `df -i` for inodes) and what fills it "
            "(`du -xsh` of its biggest directories).",
            "Free space or grow the volume; rotate/compress logs and spools; add a size limit.",
            "Make {comm} alert on ENOSPC instead of dropping data silently.",
        ),
        weight=1.2,
        label="No space left on device",
    ),
    "EDQUOT": Explanation(
        "its user's disk quota is exhausted on {obj} ({call})",
        ("disk", "quota", "full", "space", "write"),
        ("Check `quota -v` for its user; raise the quota or clean up its files.",),
        weight=1.2,
        label="Disk quota exceeded",
    ),
    "EMFILE": Explanation(
        "it has hit its open-file limit (RLIMIT_NOFILE): too many open files ({call})",
        (
            "too many open",
            "file descriptor",
            "fd",
            "limit",
            "leak",
            "degrad",
            "over time",
            "after a few",
            "restart fixes",
            "stops accepting",
            "every request fails",
        ),
        (
            "Count its descriptors (`ls /proc/{pid}/fd | wc -l`) against its limit "
            "(`grep 'open files' /proc/{pid}/limits`) and see what they are (`ls -l "
            "/proc/{pid}/fd`): a steady climb is a leak.",
            "Fix the leak (sockets/files not closed); as a stopgap raise LimitNOFILE / ulimit -n "
            "and restart {comm}.",
        ),
        weight=1.2,
        label="Too many open files",
    ),
    "ENFILE": Explanation(
        "the system-wide file table is full ({call})",
        ("too many open", "file descriptor", "limit"),
        ("Check `cat /proc/sys/fs/file-nr`; find the process holding most descriptors.",),
        weight=1.2,
        label="Too many open files in system",
    ),
    "ECONNREFUSED": Explanation(
        "nothing accepts connections on {obj}: connection refused ({call})",
        ("refus", *_NET_THEMES),
        (
            "Check that the service behind {obj} runs and listens on exactly that address "
            "(`ss -tlnp`, `ss -xlp` for unix sockets).",
            "Point {comm} at the address the service listens on, or make the service listen "
            "where {comm} expects it.",
        ),
        weight=1.1,
        label="Connection refused",
    ),
    "ECONNRESET": Explanation(
        "the peer resets its connections: connection reset by peer ({call})",
        ("reset", "connection reset", "dropped", "disconnect", "abort", *_NET_THEMES),
        (
            "Look at the peer's side: its logs, crashes, idle/keepalive timeouts, SO_LINGER 0 "
            "closes, or a proxy/load balancer resetting (`ss -tnpi` on both ends).",
            "Fix the peer or align timeouts; make {comm} retry with backoff.",
        ),
        weight=1.1,
        label="Connection reset by peer",
    ),
    "ETIMEDOUT": Explanation(
        "its {call} calls time out on {obj}: the peer never answers",
        ("timeout", "timed out", "time out", "hang", "slow", *_NET_THEMES),
        (
            "Check the path to {obj}: is the service up but not accepting (full accept queue: "
            "`ss -tlnp` Recv-Q at the backlog), or is a firewall dropping packets?",
            "Fix the peer or the network; give {comm} shorter timeouts with retries.",
        ),
        label="Connection timed out",
    ),
    "EHOSTUNREACH": Explanation(
        "there is no route to {obj} ({call})",
        ("unreachable", "route", *_NET_THEMES),
        ("Check routes and firewalls towards {obj} (`ip route get`).",),
        label="No route to host",
    ),
    "ENETUNREACH": Explanation(
        "the network of {obj} is unreachable ({call})",
        ("unreachable", "network", *_NET_THEMES),
        ("Check routes and interfaces (`ip route`, `ip addr`).",),
        label="Network is unreachable",
    ),
    "EPIPE": Explanation(
        "it writes to connections the other end has already closed: broken pipe ({call})",
        ("broken pipe", "pipe", "closed", "dropped", "disconnect", "write", *_NET_THEMES),
        (
            "Find why the peer closes first (its idle timeout, a crash, a restart) and make "
            "{comm} detect closed connections (check for EOF, use keepalives, reconnect).",
        ),
        weight=1.1,
        label="Broken pipe",
    ),
    "EADDRINUSE": Explanation(
        "the address {obj} is already in use by another socket ({call})",
        ("address already in use", "in use", "port", "bind", "start", "listen", "won't start"),
        (
            "Find who holds {obj} (`ss -tlnp`); stop the stale instance or move one of them "
            "to another port.",
            "Use SO_REUSEADDR for restarts of the same service.",
        ),
        weight=1.2,
        label="Address already in use",
    ),
    "EROFS": Explanation(
        "{obj} is on a read-only filesystem ({call})",
        ("read-only", "read only", "write", "log", "storage", "mount", "maintenance"),
        (
            "Check the mount (`findmnt -T {obj}`): remount it read-write, or fix the bind mount "
            "or the filesystem error that made the kernel remount it read-only (`dmesg`).",
            "Point {comm} at a writable path.",
        ),
        weight=1.2,
        label="Read-only file system",
    ),
    "ENOMEM": Explanation(
        "it cannot allocate memory ({call}): its limit (RLIMIT_AS, cgroup) or the host is out",
        ("memory", "alloc", "oom", "out of memory", "limit"),
        (
            "Check its limits (`grep -i 'address space' /proc/{pid}/limits`, its cgroup's "
            "memory.max) and its memory use (`ps -o rss,vsz -p {pid}`).",
            "Raise the limit or fix the allocation that asks for too much.",
        ),
        weight=1.2,
        label="Cannot allocate memory",
    ),
    "EAGAIN": Explanation(
        "its {call} calls fail with EAGAIN (resource temporarily unavailable)",
        ("thread", "fork", "limit", "resource", "temporarily unavailable", "spawn"),
        (
            "For clone/fork: check its task count against RLIMIT_NPROC and pids.max "
            "(`grep processes /proc/{pid}/limits`, `ls /proc/{pid}/task | wc -l`).",
            "Fix the thread/process leak, or raise the limit.",
        ),
        weight=0.5,
        label="Resource temporarily unavailable",
    ),
    "EAGAIN_CLONE": Explanation(
        "it cannot start more threads or processes ({call} fails with EAGAIN): it hit its "
        "uid's process limit (RLIMIT_NPROC) or its cgroup's pids.max",
        ("thread", "fork", "spawn", "limit", "resource", "can't create", "start", "new"),
        (
            "Count its threads (`ls /proc/{pid}/task | wc -l`) against its limits (`grep "
            "processes /proc/{pid}/limits`, the cgroup's pids.max).",
            "Fix the thread leak (a pool that never shrinks, threads never joined), or raise "
            "the limit (LimitNPROC / TasksMax).",
        ),
        weight=1.2,
        label="Resource temporarily unavailable",
    ),
    "ENOENT": Explanation(
        "{obj} does not exist ({call})",
        _FILE_THEMES,
        (
            "Restore {obj} (deploy the missing file), or point {comm} at the right path in its "
            "configuration or arguments (`ps -o args -p {pid}`).",
            "Make it back off between retries instead of spinning on the open.",
        ),
        weight=0.7,
        label="No such file or directory",
    ),
    "ENOENT_SOCKET": Explanation(
        "the unix socket {obj} does not exist: the server behind it is not running or listens "
        "elsewhere ({call})",
        ("socket", "connect", "reach", "daemon", "talk to", "unavailable", *_NET_THEMES),
        (
            "Check the server that should create {obj} (`ss -xlp`, `systemctl status`); start "
            "it, or point {comm} at the socket path it really uses.",
            "Check that the socket's directory is not cleaned up (tmpfiles, a /run wipe).",
        ),
        weight=1.1,
        label="No such file or directory",
    ),
    "ENOENT_PROBED": Explanation(
        "it looks for an optional local service at {obj} that is not running ({call}): glibc "
        "tries nscd on every user, group and host lookup, and falls back when it is absent",
        (),
        ("Nothing to fix unless you run nscd on purpose; start it if lookups are slow.",),
        weight=0.2,
        label="No such file or directory",
    ),
    "ENOTDIR": Explanation(
        "a directory in {obj} is not a directory ({call})",
        _FILE_THEMES,
        ("Fix the path {obj} in the configuration of {comm}.",),
        weight=0.8,
        label="Not a directory",
    ),
    "EISDIR": Explanation(
        "{obj} is a directory ({call})",
        _FILE_THEMES,
        ("Fix the path {obj} in the configuration of {comm}.",),
        label="Is a directory",
    ),
    "EBADF": Explanation(
        "it uses a file descriptor that is not open ({call}): a use-after-close bug",
        ("bad file descriptor", "crash"),
        ("Look for double close / use after close in {comm}.",),
        weight=0.8,
        label="Bad file descriptor",
    ),
    "EIO": Explanation(
        "the device behind {obj} returns I/O errors ({call})",
        ("i/o error", "disk", "storage", "read", "write", "corrupt"),
        ("Check `dmesg` for device errors and the disk's health (`smartctl -a`).",),
        weight=1.3,
        label="Input/output error",
    ),
    "EFBIG": Explanation(
        "a file grew past its size limit (RLIMIT_FSIZE or the filesystem's) ({call})",
        ("too large", "file size", "write", "limit"),
        ("Check `ulimit -f` of {comm} and the file's size; rotate it.",),
        weight=1.2,
        label="File too large",
    ),
}
GENERIC = Explanation(
    "its {call} calls fail with {errno}",
    (),
    ("Look up why {call} fails with {errno} for {comm} (`strace -f -e {call} -p {pid}`).",),
    weight=0.6,
)
CLONE_CALLS = frozenset({"clone", "clone3", "fork", "vfork"})
SOCKET_CALLS = frozenset({"connect", "bind", "sendto", "sendmsg", "accept", "accept4"})
WRITE_THEMES = _WRITE_THEMES


# Unix sockets that libraries try on every call and do without: a missing one is normal.
PROBED_SOCKETS = frozenset({"unix:/var/run/nscd/socket", "unix:/run/nscd/socket"})


def explain(errno: str, call: str, obj: str) -> Explanation:
    """The row for this failure: ENOENT on a unix socket address has its own."""
    if errno == "ENOENT" and obj in PROBED_SOCKETS:
        return TABLE["ENOENT_PROBED"]
    if errno == "ENOENT" and obj.startswith("unix:"):
        return TABLE["ENOENT_SOCKET"]
    if errno == "EAGAIN" and call in CLONE_CALLS:
        return TABLE["EAGAIN_CLONE"]
    return TABLE.get(errno, GENERIC)
