"""A parent that keeps starting a child that fails: the exec probe's exits, commands, parents.

The child comes from the non-zero exits (the comm that exits non-zero most). Its parent is only
certain once the exec probe has run filtered to that comm (its `parents` table then holds only
the child's parents), so that is the first follow-up; `ps` of the parent and its children the
second.

Facts: the wide exec run and, once run, the one filtered to the child; the top parent and its
starts; the child, its exit code and how often (a crash, `CRASH_MIN` non-zero exits or more),
else the top failed exec, else the top command (churn); the parent's `ps` line once read.
`score()`: a confirmed parent of `STARTS_MIN` starts or more at `RATE_MIN`/s or more with
`CRASH_MIN` non-zero exits -> `CRASH_LOOP` (children killed by a signal cap it at `SIGNAL_CAP`,
see oom_kill); the same before the confirmation -> `UNCONFIRMED`; `FAILED_MIN` failed execs
(ENOENT, EACCES) or more of one parent -> `FAILED_EXECS` (`FAILED_FEW` under `STARTS_MIN`
starts); else `STARTS_MIN` starts -> `CHURN` (churn), fewer -> `CHURN_FEW`.
`render()`: the parent, the child and its command, what the child does, the starts and their
rate, the parent's `ps` line.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from probes.models import COMM_MAX_LEN, TopEntry
from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    ProbeRun,
    Proc,
    cmd,
    command_output,
    parse_proc,
    probe,
    probe_runs,
    seconds,
    top,
)
from worker.backends.base import Evidence
from worker.protocol import EbpfProgramRequest

_COMM_OK = re.compile(rf"^[\x21-\x7e][\x20-\x7e]{{0,{COMM_MAX_LEN - 1}}}$")
_FILTERED = "exec_of_"
CRASH_MIN = 3  # non-zero exits of one child
FAILED_MIN = 3  # failed execs
STARTS_MIN = 5
RATE_MIN = 1.0  # starts per second
CRASH_LOOP, UNCONFIRMED, SIGNAL_CAP = 0.9, 0.6, 0.6
FAILED_EXECS, FAILED_FEW = 0.75, 0.55
CHURN, CHURN_FEW = 0.5, 0.35
LINE_MAX = 300


def _last_line(evidence: Evidence, command_id: str) -> str | None:
    result = command_output(evidence, command_id)
    if result is None:
        return None
    lines = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    return lines[0][:LINE_MAX] if lines else ""


def _filtered_name(comm: str) -> str:
    return _FILTERED + re.sub(r"[^A-Za-z0-9_.-]", "_", comm)


def _command_of(run: ProbeRun, comm: str) -> str:
    for row in top(run, "commands"):
        argv0 = row.key.split(" ", 1)[0]
        if posixpath.basename(argv0)[:COMM_MAX_LEN] == comm:
            return row.key
    return comm


def _by_comm(name: str, comm: str) -> EbpfProgramRequest:
    return probe(name, "exec", f"execs and exits of {comm} only, with their parents", comm=comm)


def _crash(crashes: list[TopEntry]) -> tuple[str, str, int] | None:
    if not crashes or crashes[0].count < CRASH_MIN:
        return None
    child, _, code = crashes[0].key.rpartition(" exit ")
    return child, code, crashes[0].count


@dataclass
class ExecFacts:
    run: ProbeRun  # the wide (unfiltered) run
    filtered: ProbeRun | None  # the run filtered to the crashing child, once run
    parent: Proc
    starts: int
    kind: str  # "crash", "failed" (failed execs) or "churn"
    child: str
    code: str
    count: int  # the child's non-zero exits (a crash) or failed execs
    child_cmd: str
    failure: str  # the top failed exec (kind "failed")
    parent_line: str | None

    @property
    def source(self) -> ProbeRun:
        return self.filtered or self.run

    @property
    def rate(self) -> float:
        return self.starts / seconds(self.source)


def _child(
    run: ProbeRun, filtered: ProbeRun | None, crash: tuple[str, str, int] | None
) -> tuple[str, str, str, int, str, str]:
    """kind, child, code, count, child's command, failed exec: a crash (non-zero exits), else
    failed execs, else churn."""
    if crash is not None:
        child, code, count = crash
        if filtered is not None:
            again = _crash(top(filtered, "nonzero_exits"))
            count = again[2] if again else 0
        return "crash", child, code, count, _command_of(filtered or run, child), ""
    failed = top(run, "failed_execs")
    child_cmd = top(run, "commands")[0].key if top(run, "commands") else "?"
    if failed and failed[0].count >= FAILED_MIN:
        top_failed = failed[0]
        code = top_failed.key.split()[0]
        return "failed", child_cmd, code, top_failed.count, child_cmd, top_failed.key
    return "churn", child_cmd, "", 0, child_cmd, ""


def facts(evidence: Evidence) -> ExecFacts | None:
    runs = probe_runs(evidence, "exec")
    wide = [r for r in runs if not r.result.program_name.startswith(_FILTERED)]
    if not wide:
        return None
    run = wide[0]
    crash = _crash(top(run, "nonzero_exits"))
    filtered = None
    if crash is not None:
        name = _filtered_name(crash[0])
        filtered = next((r for r in runs if r.result.program_name == name), None)
    source = filtered or run
    parents = top(source, "parents")
    parent = parse_proc(parents[0].key) if parents else None
    if parent is None or parent.pid is None:
        return None
    kind, child, code, count, child_cmd, failure = _child(run, filtered, crash)
    return ExecFacts(
        run=run,
        filtered=filtered,
        parent=parent,
        starts=parents[0].count,
        kind=kind,
        child=child,
        code=code,
        count=count,
        child_cmd=child_cmd,
        failure=failure,
        parent_line=_last_line(evidence, f"parent_{parent.pid}"),
    )


def score(fact: ExecFacts) -> float:
    many = fact.starts >= STARTS_MIN
    if fact.kind == "crash":
        confirmed = fact.filtered is not None and fact.count >= CRASH_MIN
        strength = CRASH_LOOP if confirmed and many and fact.rate >= RATE_MIN else UNCONFIRMED
        if fact.code == "signal":  # killed from outside (OOM killer, a person): not a crash
            strength = min(strength, SIGNAL_CAP)
        return strength
    if fact.kind == "failed":
        return FAILED_EXECS if many else FAILED_FEW
    return CHURN if many else CHURN_FEW


def next_step(fact: ExecFacts) -> NextStep | None:
    child, parent = fact.child, fact.parent
    if fact.kind == "crash" and fact.filtered is None and _COMM_OK.match(child):
        return NextStep(
            why=f"which process keeps starting {child}?",
            programs=[_by_comm(_filtered_name(child), child)],
        )
    if fact.parent_line is None:
        return NextStep(
            why=f"what is {parent.label()}, and what is it running now?",
            commands=[
                cmd(
                    f"parent_{parent.pid}",
                    f"ps -o pid,ppid,comm,etimes,args -p {parent.pid}",
                    "the restarting parent",
                ),
                cmd(
                    f"children_{parent.pid}",
                    f"ps --ppid {parent.pid} -o pid,comm,stat,etimes,args",
                    "its children now",
                ),
            ],
        )
    return None


def _what(fact: ExecFacts) -> str:
    if fact.kind == "crash":
        if fact.code == "signal":
            return f"is killed by a signal ({fact.count} times)"
        return f"exits with code {fact.code} ({fact.count} times)"
    if fact.kind == "failed":
        return f"fails to start ({fact.failure}, {fact.count} times)"
    return "keeps being replaced"


def render(fact: ExecFacts, strength: float, next_: NextStep | None) -> Finding:
    run, parent, child, code = fact.run, fact.parent, fact.child, fact.code
    what = _what(fact)
    took = f"{seconds(fact.source):.1f}s"
    cause = (
        f"Crash loop on {run.host}: {parent.label()} keeps restarting {child} "
        f"(`{fact.child_cmd}`), which {what}: {fact.starts} starts in {took} "
        f"({fact.rate:.1f}/s)."
    )
    if fact.parent_line:
        cause += f" Parent: {fact.parent_line}."
    lines = [f"{run.key} on {run.host}: {run.result.summary}"]
    if fact.kind == "crash" and fact.filtered is not None:
        lines.append(
            f"{fact.filtered.result.program_name} ({child} only): {parent.label()} started it "
            f"{fact.starts} times in {seconds(fact.filtered):.1f}s, {fact.count} exits with "
            f"code {code}"
        )
    return Finding(
        analyzer="exec_storm",
        category="process",
        score=strength,
        culprit=f"{parent.label()} -> {child}" + (f" exit {code}" if code else ""),
        root_cause=cause,
        resolution_plan=(
            f"1. Read {child}'s own error output or log: why does it exit"
            + (f" with code {code}" if code else "")
            + "? (missing config, bad argument, dependency down).\n"
            f"2. Fix that cause; until then stop {parent.comm} (pid {parent.pid}) from "
            "respawning it in a tight loop (back-off or a restart limit).\n"
            "3. Check what changed: a deploy, a config push, a credential rotation."
        ),
        ebpf_evidence="\n".join(
            [f"{parent.label()} started {child} {fact.starts} times in {took}; it {what}.", *lines]
        ),
        next=next_,
    )


@register("exec_storm")
def exec_storm(evidence: Evidence) -> list[Finding]:
    fact = facts(evidence)
    if fact is None:
        return []
    return [render(fact, score(fact), next_step(fact))]
