"""syscall_errors' table on a busy host (no kernel needed): hundreds of search-path ENOENTs from
many processes must not push a service's few rare failures (EACCES, ENOSPC, a refused unix
socket) out of the result, even after the result budget trims it."""

from __future__ import annotations

import errno
import random
import secrets

from probes.catalog.syscall_errors.reader import Calls, Failure, _summary, _top, _totals
from probes.engine.budget import fit_to_budget
from probes.models import Aggregates, ProbeResult


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
