"""The full outputs of a closed step, as plain text for a file (or inline when short)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.host.redact import redact

if TYPE_CHECKING:
    from bot.gateway import WorkerGateway
    from worker.protocol import PlanResult

MAX_FILE_CHARS = 1_000_000


def plan_result_text(result: PlanResult) -> str:
    parts: list[str] = [f"== {result.host or 'host'} (step {result.step}) =="]
    for command in result.command_results.values():
        if command.ran:
            status = f"exit {command.exit_code}, {command.duration_s:.2f}s"
            if command.timed_out:
                status += ", timed out"
            if command.truncated:
                status += ", output cut"
        else:
            status = f"not run: {command.note or command.reason or command.verdict}"
        parts.append(f"$ {command.command}    ({status})")
        if command.stdout:
            parts.append(command.stdout.rstrip("\n"))
        if command.stderr:
            parts.append("[stderr]\n" + command.stderr.rstrip("\n"))
    for key, probe in result.ebpf_results.items():
        via = f" via {', '.join(probe.attach_points)}" if probe.attach_points else ""
        parts.append(
            f"# probe {key} ({probe.probe or probe.program_name}{via}): "
            f"{probe.event_count} events in {probe.duration_s:.1f}s"
        )
        if probe.error:
            parts.append(f"error: {probe.error}")
        if probe.summary:
            parts.append(probe.summary)
        for name, rows in probe.aggregates.top.items():
            parts.append(f"top {name}:")
            parts.extend(f"  {row.count:>8}  {row.key}" for row in rows)
        for name, stats in probe.aggregates.latency.items():
            parts.append(
                f"latency {name} ({stats.unit}): count {stats.count} p50 {stats.p50} "
                f"p90 {stats.p90} p99 {stats.p99} max {stats.max}"
            )
    parts.extend(f"note: {note}" for note in result.notes)
    return "\n".join(parts)


def step_outputs_text(gateway: WorkerGateway, investigation_id: str, step: int) -> str:
    """Every host's outputs for a closed step; empty when the step has nothing to show."""
    results = gateway.step_results(investigation_id, step)
    if not any(r.command_results or r.ebpf_results for r in results):
        return ""
    return redact("\n\n".join(plan_result_text(r) for r in results))[:MAX_FILE_CHARS]
