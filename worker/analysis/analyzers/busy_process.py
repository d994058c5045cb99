"""Processes burning CPU: `pidstat -u 1 1` (the last second) when the triage ran it, else the
`ps ... --sort=-pcpu` listing (a share over each process's lifetime).

Facts: per host, the processes at `BUSY_PCPU`% or more (at most `MAX_NAMED`, busiest first) and
which listing says so.
`score()`: the busiest at `PEGGED_PCPU`% or more -> `PEGGED`; else `BUSY`.
`render()`: the busiest process, its share, the others busy, and a profile of it to take.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.backends.base import Evidence
from worker.protocol import CommandResult

BUSY_PCPU = 50.0
PEGGED_PCPU = 90.0
PEGGED, BUSY = 0.6, 0.5
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


@dataclass
class BusyFact:
    host: str
    source: str  # which listing the rows come from
    busy: list[Row]  # at `BUSY_PCPU` or more, busiest first, at most `MAX_NAMED`

    @property
    def named(self) -> list[str]:
        return [f"{c} (pid {p}) {u:g}%" for p, c, u in self.busy]


def facts(evidence: Evidence) -> list[BusyFact]:
    out = []
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
        if busy:
            out.append(BusyFact(result.host, source, busy))
    return out


def score(fact: BusyFact) -> float:
    return PEGGED if fact.busy[0][2] >= PEGGED_PCPU else BUSY


def render(fact: BusyFact, strength: float) -> Finding:
    pid, comm, pcpu = fact.busy[0]
    named = fact.named
    return Finding(
        analyzer="busy_process",
        category="performance",
        score=strength,
        culprit=f"{comm} (pid {pid})",
        root_cause=(
            f"{comm} (pid {pid}) on {fact.host} uses {pcpu:g}% CPU, the most of any "
            "process" + (f"; also busy: {'; '.join(named[1:])}." if named[1:] else ".")
        ),
        resolution_plan=(
            f"1. Profile {comm} (the cpu_profile probe with pid {pid}) to see where its "
            "time goes.\n"
            "2. If it is runaway, restart or throttle it (a person's decision)."
        ),
        ebpf_evidence=f"{fact.source} on {fact.host}: " + "; ".join(named),
    )


@register("busy_process")
def busy_process(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
