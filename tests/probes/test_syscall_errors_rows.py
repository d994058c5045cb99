"""syscall_errors' table on a busy host (no kernel needed): hundreds of search-path ENOENTs from
many processes must not push a service's few rare failures (EACCES, ENOSPC, EROFS, a refused
unix socket) out of the result, even after both result budgets trim it (the probe's own and the
loop's, which keeps only the first rows of a table); a retry loop on one missing file outranks
a bigger search over many paths. Names, counts and paths are drawn at random on each run."""

from __future__ import annotations

import errno
import random
import secrets

import pytest

from probes.catalog.syscall_errors.reader import Calls, Failure, _summary, _top, _totals
from probes.engine.budget import fit_to_budget
from probes.models import Aggregates, ProbeResult
from worker.loop.bounds import ResultLimits, bound_probe
from worker.protocol import EbpfResult

SEARCHERS = ("cc1", "python3", "pytest", "dpkg", "mypy", "node")


def _search_noise() -> list[Failure]:
    """Compilers and interpreters probing search paths: many paths, each failing a few times."""
    return [
        Failure(
            pid=random.randint(2000, 90000),
            comm=random.choice(SEARCHERS),
            nr=random.choice([4, 21, 257, 262]),
            err=errno.ENOENT,
            count=random.randint(300, 2000),
            path=f"/usr/lib/python3/{secrets.token_hex(8)}/{secrets.token_hex(8)}.py",
            repeat=random.randint(1, 6),
            objects=random.randint(60, 400),
        )
        for _ in range(random.randint(8, 15))
    ]


def _other_rare() -> list[Failure]:
    """Rare errnos of unrelated daemons, louder than the service's."""
    return [
        Failure(
            pid=random.randint(2000, 90000),
            comm=f"daemon{secrets.token_hex(2)}",
            nr=random.choice([0, 1, 16]),
            err=random.choice([errno.EBADF, errno.EPERM, errno.ENOTCONN]),
            count=random.randint(50, 120),
        )
        for _ in range(random.randint(1, 3))
    ]


def _bounded(failures: list[Failure], *, errors_only: bool) -> EbpfResult:
    """The result as the model and the analyzers get it: reader, probe budget, loop budget."""
    failures = sorted(failures, key=lambda f: -f.count)
    calls = [
        Calls(pid=f.pid, comm=f.comm, nr=f.nr, count=f.count, errors=f.count, total_ns=0, max_ns=0)
        for f in failures
    ]
    result = EbpfResult(
        program_name="syscall_errors",
        probe="syscall_errors",
        summary=_summary(3.0, calls, failures, errors_only=errors_only),
        attach_points=["tracepoint:raw_syscalls:sys_enter", "tracepoint:raw_syscalls:sys_exit"],
        duration_s=3.0,
        aggregates=Aggregates(
            totals=_totals(calls, failures),
            top=_top(calls, failures, {}, errors_only=errors_only),
        ),
    )
    fitted = EbpfResult.model_validate(fit_to_budget(result).model_dump())
    assert len(fitted.model_dump_json()) < 3_000
    return bound_probe(fitted, ResultLimits(), lambda text: text)


def test_rare_failures_survive_common_noise_and_both_budgets() -> None:
    pid = random.randint(2000, 90000)
    comm = f"svc-{secrets.token_hex(3)}"
    rare = [
        Failure(pid=pid, comm=comm, nr=257, err=errno.EACCES, count=random.randint(5, 40),
                path=f"/etc/{secrets.token_hex(4)}/app.yaml"),
        Failure(pid=pid + 1, comm=comm + "x", nr=1, err=errno.ENOSPC, count=random.randint(5, 40)),
        Failure(pid=pid + 2, comm=comm + "y", nr=42, err=errno.ENOENT, count=random.randint(5, 40),
                address=f"unix:/run/{secrets.token_hex(6)}.sock"),
    ]  # fmt: skip
    bounded = _bounded(_search_noise() + rare, errors_only=True)
    kept = {(e.labels["pid"], e.labels["errno"]) for e in bounded.aggregates.top["errors"]}
    assert {(pid, "EACCES"), (pid + 1, "ENOSPC"), (pid + 2, "ENOENT")} <= kept
    # the summary names every errno's loudest process, the rare ones first
    assert f"EACCES {rare[0].count} by {comm} (pid {pid})" in bounded.summary
    assert f"ENOSPC {rare[1].count} by {comm}x (pid {pid + 1})" in bounded.summary
    # only failing calls were counted: no "busiest" table, no routine rows; all for the errors
    assert set(bounded.aggregates.top) == {"errors"}


def test_with_every_call_counted_the_first_rows_show_distinct_errnos() -> None:
    failures = _search_noise() + _other_rare()
    failures.append(Failure(pid=7, comm="svc", nr=1, err=errno.ENOSPC, count=random.randint(5, 40)))
    bounded = _bounded(failures, errors_only=False)
    rows = bounded.aggregates.top["errors"]
    assert len(rows) >= 3 and "processes" in bounded.aggregates.top
    errnos = [e.labels["errno"] for e in rows]
    assert len(set(errnos[:3])) == 3, errnos


@pytest.mark.parametrize("err", [errno.EROFS, errno.EMFILE, errno.ENOMEM, errno.EAGAIN])
def test_one_service_rare_errno_survives_among_louder_rare_ones(err: int) -> None:
    pid = random.randint(2000, 90000)
    comm = f"svc-{secrets.token_hex(3)}"
    nr = 56 if err == errno.EAGAIN else 257  # clone's EAGAIN is a limit, never routine
    mine = Failure(pid=pid, comm=comm, nr=nr, err=err, count=random.randint(8, 45))
    bounded = _bounded([*_search_noise(), *_other_rare(), mine], errors_only=True)
    rows = bounded.aggregates.top["errors"]
    assert any(e.labels["pid"] == pid for e in rows), [e.key for e in rows]


def test_a_retry_loop_on_one_file_outranks_a_bigger_search() -> None:
    pid = random.randint(2000, 90000)
    comm = f"svc-{secrets.token_hex(3)}"
    path = f"/srv/{secrets.token_hex(4)}/{secrets.token_hex(3)}.conf"
    count = random.randint(150, 280)  # fewer failures than any searcher's
    loop = Failure(pid=pid, comm=comm, nr=257, err=errno.ENOENT, count=count, path=path,
                   repeat=count, objects=1)  # fmt: skip
    bounded = _bounded([*_search_noise(), loop], errors_only=True)
    first = bounded.aggregates.top["errors"][0]
    assert (first.labels["pid"], first.labels["path"]) == (pid, path)
    assert f"top failure openat ENOENT by {comm} (pid {pid}) on {path} x{count}" in bounded.summary
    # a searcher's row says its failures were spread over many paths
    searcher = next(e for e in bounded.aggregates.top["errors"] if e.labels["pid"] != pid)
    assert int(searcher.labels["objects"]) > 1
    assert int(searcher.labels["repeat"]) < searcher.count


def test_rare_failures_survive_common_noise_and_the_budget() -> None:
    noise = [
        Failure(
            pid=random.randint(2000, 90000),
            comm=f"cc1-{secrets.token_hex(2)}",
            nr=random.choice([4, 257, 262]),
            err=errno.ENOENT,
            count=random.randint(300, 2000),
            path=f"/usr/include/{secrets.token_hex(8)}/{secrets.token_hex(8)}.h",
        )
        for _ in range(random.randint(8, 15))
    ]
    pid = random.randint(2000, 90000)
    comm = f"svc-{secrets.token_hex(3)}"
    rare = [
        Failure(pid=pid, comm=comm, nr=257, err=errno.EACCES, count=random.randint(5, 40),
                path=f"/etc/{secrets.token_hex(4)}/app.yaml"),
        Failure(pid=pid + 1, comm=comm + "x", nr=1, err=errno.ENOSPC, count=random.randint(5, 40)),
        Failure(pid=pid + 2, comm=comm + "y", nr=42, err=errno.ENOENT, count=random.randint(5, 40),
                address=f"unix:/run/{secrets.token_hex(6)}.sock"),
    ]  # fmt: skip
    failures = sorted(noise + rare, key=lambda f: -f.count)
    calls = [
        Calls(pid=f.pid, comm=f.comm, nr=f.nr, count=f.count, errors=f.count, total_ns=0, max_ns=0)
        for f in failures
    ]
    result = ProbeResult(
        program_name="syscall_errors",
        probe="syscall_errors",
        summary=_summary(3.0, calls, failures),
        aggregates=Aggregates(totals=_totals(calls, failures), top=_top(calls, failures, {})),
    )
    fitted = fit_to_budget(result)
    assert len(fitted.model_dump_json()) < 3_000
    kept = {(e.labels["pid"], e.labels["errno"]) for e in fitted.aggregates.top["errors"]}
    assert {(pid, "EACCES"), (pid + 1, "ENOSPC"), (pid + 2, "ENOENT")} <= kept
    # the loudest row first, then each other process's telling failure (what the budgets trim
    # last)
    rows = fitted.aggregates.top["errors"]
    assert rows[0].count == failures[0].count
    assert {(e.labels["pid"], e.labels["errno"]) for e in rows[1:4]} == {
        (pid, "EACCES"),
        (pid + 1, "ENOSPC"),
        (pid + 2, "ENOENT"),
    }
