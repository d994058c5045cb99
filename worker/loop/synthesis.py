"""A Low-confidence resolution built from the evidence, for when the model did not give one.

The loop never ends with a bare error: when a budget runs out, the model fails, or the last
step still asks for more, this states what is known and what is missing.
"""

from __future__ import annotations

from worker.loop.investigation import Investigation
from worker.protocol import Resolution

_MAX_LINES = 12


def _evidence_lines(inv: Investigation) -> list[str]:
    lines = []
    for result in inv.results:
        where = f"step {result.step} on {result.host}"
        for key, probe in result.ebpf_results.items():
            what = f"error: {probe.error}" if probe.error else probe.summary
            lines.append(f"{key} ({where}): {what}")
    return lines[:_MAX_LINES]


def _command_lines(inv: Investigation) -> list[str]:
    lines = []
    for result in inv.results:
        for command in result.command_results.values():
            if command.ran:
                first = next((ln for ln in command.stdout.splitlines() if ln.strip()), "")
                lines.append(f"`{command.command}` exit {command.exit_code}: {first[:120]}")
            else:
                lines.append(f"`{command.command}` not run: {command.note or command.reason}")
    return lines[:_MAX_LINES]


def _missing_lines(inv: Investigation) -> list[str]:
    lines = []
    last = inv.turns[-1] if inv.turns else None
    if last is not None and last.reply is not None and last.reply.response_type == "diagnostic":
        reply = last.reply
        lines += [f"run `{c.command}` ({c.description or c.id})" for c in reply.commands]
        lines += [
            f"run eBPF {p.type}:{p.target} for {p.duration:g}s ({p.description or p.name})"
            for p in reply.ebpf_programs
        ]
        if reply.reasoning:
            lines.insert(0, f"the model's last reasoning: {reply.reasoning[:400]}")
    return lines[:_MAX_LINES]


def synthesise_resolution(inv: Investigation, why: str) -> Resolution:
    evidence = _evidence_lines(inv)
    commands = _command_lines(inv)
    missing = _missing_lines(inv)
    root_cause = f"Not determined: {why}. " + (
        "Evidence gathered so far is listed below; it did not single out a cause."
        if evidence or commands
        else "No evidence was gathered."
    )
    if commands:
        root_cause += "\nCommands: " + "; ".join(commands)
    plan = ["Review the evidence below by hand, then continue the investigation."]
    if missing:
        plan.append("What is still missing:")
        plan += [f"- {line}" for line in missing]
    return Resolution(
        root_cause=root_cause[:4000],
        resolution_plan="\n".join(plan)[:6000],
        confidence="Low",
        ebpf_evidence=("\n".join(evidence) or "No eBPF results.")[:4000],
    )
