"""Processes burning CPU: `pidstat -u 1 1` (the last second) when the triage ran it, else the
`ps ... --sort=-pcpu` listing (a share over each process's lifetime)."""

from __future__ import annotations

from worker.analysis.analyzers import Finding, register
from worker.backends.base import Evidence
from worker.protocol import CommandResult

BUSY_PCPU = 50.0
MAX_NAMED = 3
Row = tuple[str, str, float]  # pid, comm, %CPU


def pidstat_rows(stdout: str) -> list[Row]:
    """`Average:` rows of `pidstat -u`: PID third, then %CPU, CPU and Command last (true with
    and without the %wait column of newer sysstat)."""
    rows: list[Row] = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[0] != "Average:" or not fields[2].isdigit():
            continue
        try:
            rows.append((fields[2], fields[-1], float(fields[-3])))
        except ValueError:
            continue
    return sorted(rows, key=lambda row: -row[2])


def ps_rows(stdout: str) -> list[Row]:
    """Rows of a `ps -o ...` listing, columns found by the header (PID, COMMAND, %CPU)."""
    lines = stdout.splitlines()
    if not lines:
        return []
    header = lines[0].split()
    try:
        pid_at, comm_at, cpu_at = header.index("PID"), header.index("COMMAND"), header.index("%CPU")
    except ValueError:
        return []
    rows: list[Row] = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < len(header) or not fields[pid_at].isdigit():
            continue
        try:
            rows.append((fields[pid_at], fields[comm_at], float(fields[cpu_at])))
        except ValueError:
            continue
    return rows


def _ran(result: CommandResult | None) -> str | None:
    return result.stdout if result is not None and result.ran else None


@register("busy_process")
def busy_process(evidence: Evidence) -> list[Finding]:
    findings = []
    for result in evidence.results:
        now = _ran(result.command_results.get("cpu_now"))
        lifetime = _ran(result.command_results.get("top_cpu"))
        if now is not None:
            rows, source = pidstat_rows(now), "pidstat (last second)"
        elif lifetime is not None:
            rows, source = ps_rows(lifetime), "`ps` (lifetime CPU share)"
        else:
            continue
        busy = [row for row in rows if row[2] >= BUSY_PCPU][:MAX_NAMED]
        if not busy:
            continue
        pid, comm, pcpu = busy[0]
        named = [f"{c} (pid {p}) {u:g}%" for p, c, u in busy]
        findings.append(
            Finding(
                analyzer="busy_process",
                category="performance",
                score=0.6 if pcpu >= 90 else 0.5,
                culprit=f"{comm} (pid {pid})",
                root_cause=(
                    f"{comm} (pid {pid}) on {result.host} uses {pcpu:g}% CPU, the most of any "
                    "process" + (f"; also busy: {'; '.join(named[1:])}." if named[1:] else ".")
                ),
                resolution_plan=(
                    f"1. Profile {comm} (the cpu_profile probe with pid {pid}) to see where its "
                    "time goes.\n"
                    "2. If it is runaway, restart or throttle it (a person's decision)."
                ),
                ebpf_evidence=f"{source} on {result.host}: " + "; ".join(named),
            )
        )
    return findings
