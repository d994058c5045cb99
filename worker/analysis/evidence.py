"""Small readers over an investigation's evidence, shared by the analyzers."""

from __future__ import annotations

import re
from typing import NamedTuple

from probes.models import ProbeFilters, TopEntry
from worker.backends.base import Evidence
from worker.protocol import CommandRequest, CommandResult, EbpfProgramRequest, EbpfResult

_PROC_RE = re.compile(r"^(?P<comm>.*?) \(pid (?P<pid>\d+)\)")


class ProbeRun(NamedTuple):
    host: str
    key: str
    result: EbpfResult
    step: int


class Proc(NamedTuple):
    comm: str
    pid: int | None

    def label(self) -> str:
        return f"{self.comm} (pid {self.pid})" if self.pid is not None else self.comm


def probe_runs(evidence: Evidence, probe: str) -> list[ProbeRun]:
    """Every successful run of catalog probe `probe`, oldest first."""
    return [
        ProbeRun(result.host, key, run, result.step)
        for result in evidence.results
        for key, run in result.ebpf_results.items()
        if run.probe == probe and not run.error
    ]


def command_output(evidence: Evidence, command_id: str) -> CommandResult | None:
    """The latest result of the command with this id that ran."""
    found = None
    for result in evidence.results:
        command = result.command_results.get(command_id)
        if command is not None and command.ran:
            found = command
    return found


def own_commands(evidence: Evidence) -> set[str]:
    """Program names of the commands this investigation ran (`ss`, `ps`, `pidstat`...): their
    own failing calls (ss reading /proc/*/fd) are the investigation's, never the culprit's."""
    names = set()
    for result in evidence.results:
        for command in result.command_results.values():
            first = command.command.split(maxsplit=1)[0] if command.command.strip() else ""
            if first:
                names.add(first.rsplit("/", 1)[-1][:15])
    return names


def parse_proc(text: str) -> Proc | None:
    """`comm (pid N)` at the start of a label or key."""
    match = _PROC_RE.match(text.strip())
    if match is None:
        return None
    return Proc(match["comm"], int(match["pid"]))


def entry_proc(entry: TopEntry) -> Proc | None:
    """The process of a top-N row: its `pid`/`comm` labels, else its key."""
    pid = entry.labels.get("pid")
    comm = entry.labels.get("comm")
    if isinstance(pid, int) and isinstance(comm, str):
        return Proc(comm, pid)
    parsed = parse_proc(entry.key)
    if parsed is not None:
        return parsed
    return Proc(str(comm), pid) if isinstance(pid, int) and comm else None


def top(run: ProbeRun, table: str) -> list[TopEntry]:
    return run.result.aggregates.top.get(table, [])


def total(run: ProbeRun, name: str) -> float:
    value = run.result.aggregates.totals.get(name, 0)
    return float(value or 0)


def seconds(run: ProbeRun) -> float:
    return run.result.duration_s or 1.0


def cmd(id_: str, command: str, description: str) -> CommandRequest:
    return CommandRequest(id=id_, command=command, description=description)


def probe(
    name: str,
    target: str,
    why: str,
    *,
    pid: int | None = None,
    comm: str | None = None,
    duration: float = 3.0,
) -> EbpfProgramRequest:
    return EbpfProgramRequest(
        name=name,
        type="catalog",
        target=target,
        duration=duration,
        filters=ProbeFilters(pid=pid, comm=comm),
        description=why,
    )
