"""Where a run's wall time went, step by step, from what the loop recorded.

Per model step: the planner's (or model's) time to answer, the host's time to run the step's
plan, and inside that: the commands (the sum of their own durations, and the longest: the
allowed ones run four at a time, so the phase takes about the longest), the slowest probe compile
(0 when every probe was compiled ahead and reused), the longest probe run from attach to detach
(its window plus detaching) and the rest of the step: the run minus the longest command, compile
and probe. With the progress events (`EventClock`), the phases as they happened: the commands'
phase, from its end to the first probe attached, and from the last probe's result to the step's
end.
"""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import BaseModel

from worker.loop.events import CommandFinished, Findings, ProbeFinished, ProbeStarted, ProgressEvent
from worker.loop.investigation import Investigation


class EventClock:
    """A progress sink noting, per step, when its first host event came, when its commands
    ended, when its first probe attached, when its last probe finished and when the host's run
    ended (`Findings`), in monotonic seconds."""

    def __init__(self) -> None:
        self.marks: dict[int, dict[str, float]] = {}

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        marks = self.marks.setdefault(event.step, {})
        marks.setdefault("first", now)
        if isinstance(event, CommandFinished):
            marks["commands_end"] = now
        elif isinstance(event, ProbeStarted):
            marks.setdefault("first_attach", now)
        elif isinstance(event, ProbeFinished):
            marks["probes_end"] = now
        elif isinstance(event, Findings):
            marks["end"] = now


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
    commands_phase_s: float = 0.0  # first event to the last command's end
    to_attach_s: float = 0.0  # commands' end (or first event) to the first probe attached
    after_probes_s: float = 0.0  # last probe's result to the end of the host's run


def _seconds(start: datetime, end: datetime | None) -> float:
    return round((end - start).total_seconds(), 3) if end is not None else 0.0


def _phases(timing: StepTiming, marks: dict[str, float]) -> None:
    first = marks.get("first")
    if first is None:
        return
    commands_end = marks.get("commands_end", first)
    timing.commands_phase_s = round(commands_end - first, 3)
    if "first_attach" in marks:
        timing.to_attach_s = round(marks["first_attach"] - commands_end, 3)
    if "probes_end" in marks and "end" in marks:
        timing.after_probes_s = round(marks["end"] - marks["probes_end"], 3)


def step_timings(inv: Investigation, clock: EventClock | None = None) -> list[StepTiming]:
    out = []
    for number, turn in enumerate(inv.turns, start=1):
        timing = StepTiming(step=number, model_s=_seconds(turn.started_at, turn.finished_at))
        for result in inv.results_of(number):
            probes = [p for p in result.ebpf_results.values() if not p.error]
            commands = [c.duration_s for c in result.command_results.values()]
            timing.run_s = max(timing.run_s, _seconds(result.started_at, result.finished_at))
            timing.commands_s = round(max(timing.commands_s, sum(commands)), 3)
            timing.longest_command_s = max([timing.longest_command_s, *commands])
            timing.probes = max(timing.probes, len(result.ebpf_results))
            timing.compile_s = max([timing.compile_s, *(p.compile_s for p in probes)])
            timing.window_s = max([timing.window_s, *(p.duration_s for p in probes)])
        if timing.run_s:
            known = timing.longest_command_s + timing.compile_s + timing.window_s
            timing.other_s = round(max(0.0, timing.run_s - known), 3)
            if clock is not None:
                _phases(timing, clock.marks.get(number, {}))
        out.append(timing)
    return out
