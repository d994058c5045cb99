"""The result budget: any result, however busy, comes out under 3,000 characters of JSON with its
biggest rows, fullest buckets and summary; attach point short forms expand back exactly."""

from __future__ import annotations

from probes.engine.budget import compact_attach_points, expand_attach_points, fit_to_budget
from probes.models import Aggregates, HistogramBucket, LatencyStats, ProbeResult, TopEntry

SYSCALLS = ["openat", "pread64", "pwrite64", "read", "readv", "write", "writev"]


def _busy_result() -> ProbeResult:
    rows = {
        table: [
            TopEntry(
                key=f"/var/lib/app/{'x' * 120}/file-{table}-{i}",
                count=1000 - i,
                value=float(i),
                labels={"pid": 4000 + i, "comm": "svc", "path": "/srv/" + "p" * 200},
            )
            for i in range(10)
        ]
        for table in ("processes", "files", "errors", "slowest")
    }
    histogram = [
        HistogramBucket(low=float(1 << i), high=float(1 << (i + 1)), count=(i * 37) % 11 + 1)
        for i in range(14)
    ]
    stats = LatencyStats(unit="us", count=sum(b.count for b in histogram), p99=9000.0, max=9100.0)
    stats.histogram = histogram
    return ProbeResult(
        program_name="busy",
        probe="file_io",
        event_count=123456,
        summary="File I/O in 3.0s: svc (pid 4000) wrote 1.2 GB to /var/lib/app/... (p99 9 ms)",
        events=[{"data": {"path": "/x/" + "y" * 300, "n": i}} for i in range(5)],
        attach_points=[
            f"tracepoint:syscalls:sys_{p}_{s}" for s in SYSCALLS for p in ("enter", "exit")
        ],
        aggregates=Aggregates(
            totals={"calls": 123456, "errors": 12},
            top=rows,
            latency={"read": stats, "write": stats.model_copy()},
        ),
    )


def test_a_busy_result_is_trimmed_under_budget_keeping_what_matters() -> None:
    busy = _busy_result()
    assert len(busy.model_dump_json()) > 10_000
    fitted = fit_to_budget(busy)
    assert len(fitted.model_dump_json()) < 3000
    assert fitted.summary == busy.summary and fitted.aggregates.totals == busy.aggregates.totals
    for table, rows in fitted.aggregates.top.items():
        assert rows, table
        assert rows[0].count == busy.aggregates.top[table][0].count  # the biggest row is kept
    read = fitted.aggregates.latency["read"]
    assert (read.p99, read.max) == (9000.0, 9100.0)  # percentiles come from every bucket
    assert read.histogram and read.histogram[-1] == busy.aggregates.latency["read"].histogram[-1]
    assert any("trimmed to fit" in w for w in fitted.warnings)


def test_a_small_result_is_left_alone() -> None:
    small = ProbeResult(program_name="p", probe="exec", summary="3 execs", attach_points=["a"])
    assert fit_to_budget(small) == small


def test_many_syscall_tracepoints_are_written_short_and_expand_back() -> None:
    labels = [f"tracepoint:syscalls:sys_{p}_{s}" for s in SYSCALLS for p in ("enter", "exit")]
    labels += ["tracepoint:syscalls:sys_enter_close", "uprobe:c:getaddrinfo"]
    short = compact_attach_points(labels)
    assert short == [
        "uprobe:c:getaddrinfo",
        "tracepoint:syscalls:sys_{enter,exit}_{openat,pread64,pwrite64,read,readv,write,writev}",
        "tracepoint:syscalls:sys_enter_close",
    ]
    assert sorted(expand_attach_points(short)) == sorted(labels)


def test_a_few_tracepoints_stay_as_they_are() -> None:
    labels = ["tracepoint:syscalls:sys_enter_connect", "tracepoint:syscalls:sys_exit_connect"]
    assert compact_attach_points(labels) == labels
    assert expand_attach_points(labels) == labels
