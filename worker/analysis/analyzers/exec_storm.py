"""A parent that keeps starting a child that fails: the exec probe's exits, commands, parents.

The child comes from the non-zero exits (the comm that exits non-zero most). Its parent is only
certain once the exec probe has run filtered to that comm (its `parents` table then holds only
the child's parents), so that is the first follow-up; `ps` of the parent and its children the
second. Score: a confirmed parent of >= 5 starts at >= 1/s with >= 3 non-zero exits -> 0.9 (a
crash loop; children killed by a signal cap it at 0.6, see oom_kill); the same before the
confirmation -> 0.6; failed execs (ENOENT, EACCES) of one parent -> 0.75; >= 5 starts without a
failure -> 0.5 (churn).
"""

from __future__ import annotations

import posixpath
import re

from probes.models import COMM_MAX_LEN, TopEntry
from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    ProbeRun,
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


def _last_line(evidence: Evidence, command_id: str) -> str | None:
    result = command_output(evidence, command_id)
    if result is None:
        return None
    lines = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    return lines[0][:300] if lines else ""


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
    if not crashes or crashes[0].count < 3:
        return None
    child, _, code = crashes[0].key.rpartition(" exit ")
    return child, code, crashes[0].count


@register("exec_storm")
def exec_storm(evidence: Evidence) -> list[Finding]:
    runs = probe_runs(evidence, "exec")
    wide = [r for r in runs if not r.result.program_name.startswith(_FILTERED)]
    if not wide:
        return []
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
        return []
    starts = parents[0].count
    rate = starts / seconds(source)
    lines = [f"{run.key} on {run.host}: {run.result.summary}"]
    next_step = None
    if crash is not None:
        child, code, count = crash
        if filtered is not None:
            again = _crash(top(filtered, "nonzero_exits"))
            count = again[2] if again else 0
            lines.append(
                f"{filtered.result.program_name} ({child} only): {parent.label()} started it "
                f"{starts} times in {seconds(filtered):.1f}s, {count} exits with code {code}"
            )
        child_cmd = _command_of(source, child)
        what = f"exits with code {code} ({count} times)"
        confirmed = filtered is not None and count >= 3
        score = 0.9 if confirmed and starts >= 5 and rate >= 1 else 0.6
        if code == "signal":  # killed from outside (OOM killer, a person): not a crash
            what = f"is killed by a signal ({count} times)"
            score = min(score, 0.6)
        if filtered is None and _COMM_OK.match(child):
            name = _filtered_name(child)
            next_step = NextStep(
                why=f"which process keeps starting {child}?",
                programs=[_by_comm(name, child)],
            )
    else:
        failed = top(run, "failed_execs")
        child_cmd = top(run, "commands")[0].key if top(run, "commands") else "?"
        if failed and failed[0].count >= 3:
            child, code = child_cmd, failed[0].key.split()[0]
            what = f"fails to start ({failed[0].key}, {failed[0].count} times)"
            score = 0.75 if starts >= 5 else 0.55
        else:
            child, code, what = child_cmd, "", "keeps being replaced"
            score = 0.5 if starts >= 5 else 0.35
    cause = (
        f"Crash loop on {run.host}: {parent.label()} keeps restarting {child} "
        f"(`{child_cmd}`), which {what}: {starts} starts in {seconds(source):.1f}s "
        f"({rate:.1f}/s)."
    )
    parent_id, children_id = f"parent_{parent.pid}", f"children_{parent.pid}"
    parent_line = _last_line(evidence, parent_id)
    if parent_line is None and next_step is None:
        next_step = NextStep(
            why=f"what is {parent.label()}, and what is it running now?",
            commands=[
                cmd(
                    parent_id,
                    f"ps -o pid,ppid,comm,etimes,args -p {parent.pid}",
                    "the restarting parent",
                ),
                cmd(
                    children_id,
                    f"ps --ppid {parent.pid} -o pid,comm,stat,etimes,args",
                    "its children now",
                ),
            ],
        )
    elif parent_line:
        cause += f" Parent: {parent_line}."
    return [
        Finding(
            analyzer="exec_storm",
            category="process",
            score=score,
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
                [
                    f"{parent.label()} started {child} {starts} times in "
                    f"{seconds(source):.1f}s; it {what}.",
                    *lines,
                ]
            ),
            next=next_step,
        )
    ]
