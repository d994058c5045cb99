"""syscall_errors reader: in-kernel call/error sums -> top failures, busiest and slowest calls."""

from __future__ import annotations

import errno
import ipaddress
from collections import Counter, defaultdict
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.catalog.syscall_errors.syscall_table import syscall_name
from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    c_string,
    comm_text,
    fmt_ms,
    latency_from_log2,
    plural,
    proc_label,
    raw_field,
)
from probes.models import Aggregates, LatencyStats, TopEntry

TOP_ERRORS = 8
SUMMARY_ERRNOS = 4  # errnos listed in the summary, with each one's leading process
PATH_CUT = 63  # the probe keeps 63 bytes of a path: one that long may stand for many
# Errnos that healthy programs get all the time (search paths, probing, feature checks).
COMMON_ERRNOS = {
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EINVAL,
    errno.ENODATA,
    errno.ENXIO,
    errno.EOPNOTSUPP,
    errno.ESPIPE,
    errno.ENOSYS,
    errno.ELOOP,
    errno.ERANGE,
    errno.ESRCH,
}
OBJ_SOCKADDR = 1
# Unix sockets that libraries try on every call and do without (glibc's nscd): a missing one
# is as common as a search path's ENOENT.
PROBED_SOCKETS = frozenset({"unix:/var/run/nscd/socket", "unix:/run/nscd/socket"})
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
TOP_N = 3
ROUTINE_SHOWN = 1
HIST_KEEP = 6  # the slowest buckets of all calls: where the time goes
KERNEL_ERRNOS = {
    512: "ERESTARTSYS",
    513: "ERESTARTNOINTR",
    514: "ERESTARTNOHAND",
    515: "ENOIOCTLCMD",
    516: "ERESTART_RESTARTBLOCK",
    524: "ENOTSUPP",
}


# Failures that busy, healthy programs produce all the time: listed apart, never the headline.
ROUTINE_ANY = {errno.EAGAIN, errno.EINTR, *KERNEL_ERRNOS}
ROUTINE_FOR = {
    errno.EINPROGRESS: {"connect"},
    errno.ETIMEDOUT: {
        "futex",
        "futex_wait",
        "futex_waitv",
        "semtimedop",
        "ppoll",
        "pselect6",
        "epoll_pwait",
        "epoll_pwait2",
        "io_getevents",
        "mq_timedreceive",
    },
    errno.ENOTTY: {"ioctl"},
    errno.ECHILD: {"wait4", "waitid"},
}


def sockaddr_text(raw: bytes) -> str:
    """The address the kernel side copied from a connect/bind/sendto sockaddr: `unix:/path`
    (`unix:@name` for an abstract socket), `1.2.3.4:80`, `[::1]:80`, else `family N`."""
    if len(raw) < 2:
        return ""
    family = int.from_bytes(raw[:2], "little")
    if family == AF_UNIX:
        if raw[2:3] == b"\0":
            return "unix:@" + raw[3:].split(b"\0", 1)[0].decode(errors="replace")
        return "unix:" + raw[2:].split(b"\0", 1)[0].decode(errors="replace")
    if family == AF_INET and len(raw) >= 8:
        return f"{ipaddress.IPv4Address(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == AF_INET6 and len(raw) >= 24:
        return f"[{ipaddress.IPv6Address(raw[8:24])}]:{int.from_bytes(raw[2:4], 'big')}"
    return f"family {family}" if family else ""


def object_text(kind: int, raw: bytes) -> str:
    """A failing call's object as text: the path, or the decoded socket address."""
    if kind == OBJ_SOCKADDR:
        return sockaddr_text(raw)
    return c_string(raw)


def errno_name(number: int) -> str:
    return errno.errorcode.get(number) or KERNEL_ERRNOS.get(number, f"errno {number}")


# EAGAIN from clone/fork is a process or thread limit, never routine.
NEVER_ROUTINE = {(errno.EAGAIN, name) for name in ("clone", "clone3", "fork", "vfork")}


def is_routine(syscall: str, err: int) -> bool:
    if (err, syscall) in NEVER_ROUTINE:
        return False
    return err in ROUTINE_ANY or syscall in ROUTINE_FOR.get(err, set())


class Calls(BaseModel):
    pid: int
    comm: str
    nr: int
    count: int
    errors: int
    total_ns: int
    max_ns: int

    @property
    def proc(self) -> str:
        return proc_label(self.comm, self.pid)

    @property
    def syscall(self) -> str:
        return syscall_name(self.nr)


class Failure(BaseModel):
    pid: int
    comm: str
    nr: int
    err: int
    count: int
    path: str = ""
    address: str = ""
    repeat: int = 0  # failures on its most frequent object (0: no object recorded)
    objects: int = 0  # distinct objects it failed on

    @property
    def key(self) -> str:
        proc = proc_label(self.comm, self.pid)
        return f"{syscall_name(self.nr)} {errno_name(self.err)} by {proc}"

    @property
    def headline(self) -> str:
        target = self.path or self.address
        return self.key + (f" on {target}" if target else "")

    @property
    def routine(self) -> bool:
        return is_routine(syscall_name(self.nr), self.err)

    @property
    def common(self) -> bool:
        """A failure healthy programs have too (ENOENT on a path, or on a socket libraries only
        probe for, like nscd's); not on another socket address."""
        return self.err in COMMON_ERRNOS and (not self.address or self.address in PROBED_SOCKETS)


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=3)

    def on_event(self, ring: str, event: Any) -> None:
        name = syscall_name(int(event.nr))
        data: dict[str, Any] = {
            "tid": int(event.tid),
            "syscall": name,
            "errno": errno_name(int(event.err)),
            "latency_us": round(int(event.lat_ns) / 1e3, 3),
        }
        obj = object_text(int(event.kind), raw_field(event, "path"))
        if obj:
            data["address" if int(event.kind) == OBJ_SOCKADDR else "path"] = obj
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=int(event.pid),
                process_name=comm_text(event.comm),
                event_type="syscall_error",
                data=data,
            ),
            kind=name,
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        calls = [
            Calls(
                pid=int(k.pid),
                comm=comm_text(k.comm),
                nr=int(k.nr),
                count=int(v.count),
                errors=int(v.errors),
                total_ns=int(v.total_ns),
                max_ns=int(v.max_ns),
            )
            for k, v in bpf["calls"].items()
        ]
        paths: dict[tuple[int, int, int], Counter[str]] = defaultdict(Counter)
        addresses: dict[tuple[int, int, int], Counter[str]] = defaultdict(Counter)
        for k, v in bpf["error_paths"].items():
            kind = int(k.kind)
            into = addresses if kind == OBJ_SOCKADDR else paths
            text = object_text(kind, raw_field(k, "path"))
            if text:
                into[(int(k.pid), int(k.nr), int(k.err))][text] += int(v.value)
        failures = []
        for k, v in bpf["errors"].items():
            pid, nr, err = int(k.pid), int(k.nr), int(k.err)
            seen = paths.get((pid, nr, err))
            aimed = addresses.get((pid, nr, err))
            objects = seen or aimed
            failures.append(
                Failure(
                    pid=pid,
                    comm=comm_text(k.comm),
                    nr=nr,
                    err=err,
                    count=int(v.value),
                    path=seen.most_common(1)[0][0] if seen else "",
                    address=aimed.most_common(1)[0][0] if aimed else "",
                    repeat=max((c.most_common(1)[0][1] for c in (seen, aimed) if c), default=0),
                    objects=len(objects) if objects else 0,
                )
            )
        failures.sort(key=lambda f: (-f.count, f.key))
        buckets: dict[int, dict[int, int]] = defaultdict(dict)
        for k, v in bpf["lat_hist"].items():
            if int(v.value):
                buckets[int(k.nr)][int(k.slot)] = int(v.value)
        errors_only = bool(self.run.params.get("errors_only", False))
        return ReaderOutput(
            event_count=sum(c.count for c in calls),
            events=self.samples.dumps(),
            summary=_summary(elapsed_s, calls, failures, errors_only=errors_only),
            aggregates=Aggregates(
                totals=_totals(calls, failures),
                top=_top(calls, failures, buckets, errors_only=errors_only),
                latency=_latency(calls, failures, buckets),
            ),
        )


def _totals(calls: list[Calls], failures: list[Failure]) -> dict[str, int | float]:
    total = sum(c.count for c in calls)
    failed = sum(f.count for f in failures)
    return {
        "calls": total,
        "errors": failed,
        "error_rate": round(failed / total, 4) if total else 0.0,
        "processes": len({c.pid for c in calls}),
        "syscalls": len({c.nr for c in calls}),
    }


def _top(
    calls: list[Calls],
    failures: list[Failure],
    buckets: dict[int, dict[int, int]],
    *,
    errors_only: bool = False,
) -> dict[str, list[TopEntry]]:
    top: dict[str, list[TopEntry]] = {}
    unusual = _spread(_by_loudness([f for f in failures if not f.routine]))
    routine = [f for f in failures if f.routine][:ROUTINE_SHOWN]
    if unusual:
        top["errors"] = [_failure_entry(f) for f in unusual[:TOP_ERRORS]]
    if errors_only:
        # only failing calls were counted: "busiest" would repeat the errors table, and the
        # routine ones are a count in the summary; the budget goes to the errors table
        return top
    if routine:
        top["routine_errors"] = [_failure_entry(f) for f in routine]
    per_proc: dict[int, list[Calls]] = defaultdict(list)
    for c in calls:
        per_proc[c.pid].append(c)
    busiest = sorted(per_proc.values(), key=lambda rows: -sum(r.count for r in rows))[:TOP_N]
    if busiest:
        top["processes"] = []
        for rows in busiest:
            lead = max(rows, key=lambda r: r.count)
            top["processes"].append(
                TopEntry(
                    key=lead.proc,
                    count=sum(r.count for r in rows),
                    value=float(sum(r.errors for r in rows)),
                    labels={"pid": lead.pid, "comm": lead.comm, "top_syscall": lead.syscall},
                )
            )
    timed = [c for c in calls if c.max_ns]  # errors_only runs do not time calls
    slowest = sorted(timed, key=lambda c: (-c.max_ns, c.proc))[:TOP_N]
    if slowest:
        top["slowest"] = [
            TopEntry(
                key=f"{c.syscall} by {c.proc}",
                count=c.count,
                value=round(c.max_ns / 1e6, 3),
                labels={
                    "pid": c.pid,
                    "comm": c.comm,
                    "syscall": c.syscall,
                    "total_ms": round(c.total_ns / 1e6, 3),
                },
            )
            for c in slowest
        ]
    return top


def _weight(f: Failure) -> int:
    """How loudly a row says something is wrong: its count; for a common failure (ENOENT on a
    path) only its repeats on its one most frequent object, a retry loop, since a search over
    many paths is normal; a path cut at the probe's limit may stand for many paths, and a
    library's probe for an optional service (nscd's socket) is routine: once."""
    if not f.common:
        return f.count
    if (f.path and len(f.path) >= PATH_CUT) or f.address in PROBED_SOCKETS:
        return 1
    return f.repeat or f.count


def _by_loudness(failures: list[Failure]) -> list[Failure]:
    return sorted(failures, key=lambda f: (-_weight(f), -f.count, f.key))


def _spread(ordered: list[Failure]) -> list[Failure]:
    """`ordered` (loudest first) with the rows that show something new moved up: the loudest
    row; its process's failure with another errno, if any (a storm of missing-file opens and
    refused connects is one story); the loudest row of each errno not shown yet (errnos a
    healthy program seldom gets first: ENOSPC, EACCES, EMFILE, EROFS, ECONNREFUSED...); each
    process not shown yet with its own most telling failure (an unusual errno before a common
    one, biggest first: a quiet service's few refused connects or EPIPEs); then the rest. On a
    busy host the result budgets keep only the first few rows of a table: hundreds of
    search-path ENOENTs of compilers and interpreters, or one process's many failing calls,
    must not push a service's few ENOSPC out of it."""
    if not ordered:
        return ordered
    head = ordered[0]
    same = next((f for f in ordered[1:] if f.pid == head.pid and f.err != head.err), None)
    out = [head] if same is None else [head, same]
    errnos = {f.err for f in out}
    for f in [f for f in ordered if not f.common] + [f for f in ordered if f.common]:
        if f.err not in errnos:
            out.append(f)
            errnos.add(f.err)
    pids = {f.pid for f in out}
    leads = sorted(ordered, key=lambda f: (f.common, -f.count, f.key))
    for f in leads:
        if f.pid not in pids and f not in out:
            out.append(f)
            pids.add(f.pid)
    return out + [f for f in ordered if f not in out]


def _failure_entry(f: Failure) -> TopEntry:
    labels: dict[str, str | int | float] = {
        "pid": f.pid,
        "comm": f.comm,
        "syscall": syscall_name(f.nr),
        "errno": errno_name(f.err),
    }
    if f.path:
        labels["path"] = f.path
    if f.address:
        labels["address"] = f.address
    if f.objects > 1:  # failures spread over several objects: `repeat` on the one shown
        labels["objects"] = f.objects
        labels["repeat"] = f.repeat
    return TopEntry(key=f.key, count=f.count, labels=labels)


def _latency(
    calls: list[Calls], failures: list[Failure], buckets: dict[int, dict[int, int]]
) -> dict[str, LatencyStats]:
    """All calls together, and (percentiles only) the syscall of the top unusual failure."""
    out: dict[str, LatencyStats] = {}
    merged: Counter[int] = Counter()
    for slots in buckets.values():
        merged.update(slots)
    if merged:
        biggest = max((c.max_ns for c in calls), default=0)
        stats = latency_from_log2(merged, base_unit="ns", unit="us", max_value=biggest or None)
        out["all"] = stats.model_copy(update={"histogram": stats.histogram[-HIST_KEEP:]})
    unusual = [f for f in failures if not f.routine]
    if unusual and unusual[0].nr in buckets:
        nr = unusual[0].nr
        biggest = max((c.max_ns for c in calls if c.nr == nr), default=0)
        stats = latency_from_log2(buckets[nr], base_unit="ns", unit="us", max_value=biggest or None)
        out[syscall_name(nr)] = stats.model_copy(update={"histogram": []})
    return out


def _by_errno(failures: list[Failure]) -> str:
    """The failures per errno, rarest kinds first, each with its loudest process: `EROFS 40
    by logd (pid 7), ENOENT 900 by cc1 (pid 9)`."""
    per: dict[int, list[Failure]] = defaultdict(list)
    for f in failures:
        per[f.err].append(f)
    order = sorted(per, key=lambda e: (e in COMMON_ERRNOS, -sum(f.count for f in per[e])))
    parts = []
    for err in order[:SUMMARY_ERRNOS]:
        loudest = max(per[err], key=lambda f: (_weight(f), f.count))
        parts.append(
            f"{errno_name(err)} {sum(f.count for f in per[err])} by "
            f"{proc_label(loudest.comm, loudest.pid)}"
        )
    more = len(order) - SUMMARY_ERRNOS
    return ", ".join(parts) + (f", {more} more errnos" if more > 0 else "")


def _summary(
    elapsed_s: float, calls: list[Calls], failures: list[Failure], *, errors_only: bool = False
) -> str:
    total = sum(c.count for c in calls)
    head = f"Syscalls in {elapsed_s:.1f}s"
    if not total and not failures:
        return f"{head}: no system calls seen"
    failed = sum(f.count for f in failures)
    text = f"{head}: {plural(total, 'call')}, {failed} failed"
    unusual = _by_loudness([f for f in failures if not f.routine])
    if len({f.err for f in unusual}) > 1:
        text += f" ({_by_errno(unusual)})"
    for label, f in zip(("top failure", "next"), unusual[:2], strict=False):
        text += f"; {label} {f.headline if label == 'top failure' else f.key} x{f.count}"
    routine = sum(f.count for f in failures if f.routine)
    if routine:
        text += f" ({routine} routine: EAGAIN, EINTR, timeouts...)"
    if calls and not errors_only:
        per_proc: Counter[str] = Counter()
        for c in calls:
            per_proc[c.proc] += c.count
        name, count = per_proc.most_common(1)[0]
        text += f"; most calls {name} ({count})"
        slow = max(calls, key=lambda c: c.max_ns)
        if slow.max_ns:
            text += f"; longest {slow.syscall} by {slow.proc} {fmt_ms(slow.max_ns)}"
    return text
