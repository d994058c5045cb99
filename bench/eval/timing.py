"""Where a run's wall time went, step by step, from what the loop recorded.

Per model step: the planner's (or model's) time to answer, the host's time to run the step's
plan, and inside that: the commands (the sum of their own durations, and the longest: the
allowed ones run four at a time, so the phase takes about the longest), the slowest probe compile
(0 when every probe was compiled ahead and reused), the longest probe run from attach to detach
(its window plus detaching) and the rest of the step (probe processes' start, attach, reading the
maps, redaction): the run minus the longest command, compile and probe.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from worker.loop.investigation import Investigation


class StepTiming(BaseModel):
    step: int
    model_s: float = 0.0
    run_s: float = 0.0
    commands_s: float = 0.0
    longest_command_s: float = 0.0
    probes: int = 0
    compile_s: float = 0.0
    window_s: float = 0.0
    other_s: float = 0.0


def _seconds(start: datetime, end: datetime | None) -> float:
    return round((end - start).total_seconds(), 3) if end is not None else 0.0


def step_timings(inv: Investigation) -> list[StepTiming]:
    out = []
    for number, turn in enumerate(inv.turns, start=1):
        timing = StepTiming(step=number, model_s=_seconds(turn.started_at, turn.finished_at))
        for result in inv.results_of(number):
            probes = [p for p in result.ebpf_results.values() if not p.error]
            commands = sum(c.duration_s for c in result.command_results.values())
            timing.run_s = max(timing.run_s, _seconds(result.started_at, result.finished_at))
            timing.commands_s = round(max(timing.commands_s, commands), 3)
            timing.longest_command_s = max(
                [timing.longest_command_s, *(c.duration_s for c in result.command_results.values())]
            )
            timing.probes = max(timing.probes, len(result.ebpf_results))
            timing.compile_s = max([timing.compile_s, *(p.compile_s for p in probes)])
            timing.window_s = max([timing.window_s, *(p.duration_s for p in probes)])
        if timing.run_s:
            known = timing.longest_command_s + timing.compile_s + timing.window_s
            timing.other_s = round(max(0.0, timing.run_s - known), 3)
        out.append(timing)
    return out
