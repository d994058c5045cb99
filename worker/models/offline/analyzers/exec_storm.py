"""A parent that keeps starting a child that fails: the exec probe's parents, commands, exits.

Score: one parent starting >= 5 programs at >= 1/s with >= 3 non-zero exits -> 0.85 (a crash
loop; children killed by a signal cap it at 0.6, see oom_kill); the same with failed execs
instead -> 0.75; >= 3 starts -> 0.5 (churn, no failure seen).
Next: the parent's command line and its current children (`ps`), quoted in the conclusion.
"""

from __future__ import annotations

from worker.models.base import Evidence
from worker.models.offline.analyzers import Finding, NextStep, register
from worker.models.offline.evidence import (
    cmd,
    command_output,
    parse_proc,
    probe_runs,
    seconds,
    top,
    total,
)


def _last_line(evidence: Evidence, command_id: str) -> str | None:
    result = command_output(evidence, command_id)
    if result is None:
        return None
    lines = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    return lines[0][:300] if lines else ""


@register("exec_storm")
def exec_storm(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "exec")[:1]:
        parents = top(run, "parents")
        if not parents:
            continue
        parent = parse_proc(parents[0].key)
        starts = parents[0].count
        if parent is None or parent.pid is None or starts < 3:
            continue
        rate = starts / seconds(run)
        crashes = top(run, "nonzero_exits")
        failed = top(run, "failed_execs")
        commands = top(run, "commands")
        child_cmd = commands[0].key if commands else "?"
        if crashes and crashes[0].count >= 3:
            child, _, code = crashes[0].key.rpartition(" exit ")
            what = f"exits with code {code} ({crashes[0].count} times)"
            score = 0.85 if starts >= 5 and rate >= 1 else 0.6
            if code == "signal":  # killed from outside (OOM killer, a person): not a crash
                what = f"is killed by a signal ({crashes[0].count} times)"
                score = min(score, 0.6)
        elif failed and failed[0].count >= 3:
            child, code = child_cmd, failed[0].key.split()[0]
            what = f"fails to start ({failed[0].key}, {failed[0].count} times)"
            score = 0.75 if starts >= 5 else 0.55
        else:
            child, code, what = child_cmd, "", "keeps being replaced"
            score = 0.5 if starts >= 5 else 0.35
        cause = (
            f"Crash loop on {run.host}: {parent.label()} keeps restarting {child} "
            f"(`{child_cmd}`), which {what}: {starts} starts in {seconds(run):.1f}s "
            f"({rate:.1f}/s)."
        )
        parent_id, children_id = f"parent_{parent.pid}", f"children_{parent.pid}"
        parent_line = _last_line(evidence, parent_id)
        next_step = None
        if parent_line is None:
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
        exits = int(total(run, "exits"))
        findings.append(
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
                ebpf_evidence=(
                    f"{run.key} on {run.host}: {parent.label()} started {starts} programs in "
                    f"{seconds(run):.1f}s; {what}; {exits} exits in all. {run.result.summary}"
                ),
                next=next_step,
            )
        )
    return findings
