"""From the model's eBPF program requests to probe runs on this host, and back.

Each request is resolved to a catalog probe (`probes.resolver`); a refusal comes back as an
`EbpfResult` whose error carries the resolver's text (with the nearest probes) so the model can
ask again. Resolved requests run together (`probes.engine.runner.run_probes`); the runner's progress
becomes ProbeStarted/ProbeFinished events.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import ValidationError

from probes.engine.runner import ProbeProgress, run_probes
from probes.models import ProbeRequest, ProbeResult
from probes.params import ProbeRequestError
from probes.requests import ProbeAsk
from probes.resolver import resolve, to_probe_request
from worker import metrics
from worker.loop.events import EventSink, ProbeFinished, ProbeRefused, ProbeStarted
from worker.loop.investigation import StepPlan
from worker.protocol import EbpfProgramRequest, EbpfResult


def requested_label(program: EbpfProgramRequest) -> str:
    return f"{program.type}:{program.target}"


class _Resolved:
    def __init__(self, program: EbpfProgramRequest, request: ProbeRequest, resolved_from: str):
        self.program = program
        self.request = request
        self.resolved_from = resolved_from


def _resolve(program: EbpfProgramRequest) -> _Resolved | str:
    """A runnable probe request for `program`, or the refusal text (with the nearest probes)."""
    try:
        ask = ProbeAsk(
            type=program.type,
            target=program.target,
            label=program.name,
            duration_s=program.duration,
            filters=program.filters,
            params=program.params,
        )
    except ValidationError as exc:
        return f"malformed request: {exc.errors()[0]['msg']}"
    resolved = resolve(ask)
    if not resolved.ok:
        return resolved.reason
    try:
        request = to_probe_request(ask, resolved)
    except (ProbeRequestError, ValidationError) as exc:
        return str(exc)
    return _Resolved(program, request, ask.key)


def run_program_requests(plan: StepPlan, host: str, on_event: EventSink) -> dict[str, EbpfResult]:
    """Run the plan's eBPF programs here; results keyed `<name>_<unix time>` as in the seed."""
    stamp = int(time.time())
    results: dict[str, EbpfResult] = {}
    runnable: list[_Resolved] = []
    for program in plan.ebpf_programs:
        outcome = _resolve(program)
        if isinstance(outcome, str):
            results[f"{program.name}_{stamp}"] = _refused(plan, host, program, outcome, on_event)
        else:
            runnable.append(outcome)
    probe_results: list[ProbeResult] = run_probes(
        [item.request for item in runnable],
        on_progress=_progress_sink(plan, host, runnable, on_event),
    )
    metrics.probes_finished(probe_results)
    for item, probe_result in zip(runnable, probe_results, strict=True):
        results[f"{item.program.name}_{stamp}"] = _finished(
            plan, host, item, probe_result, on_event
        )
    return results


def _refused(
    plan: StepPlan, host: str, program: EbpfProgramRequest, reason: str, on_event: EventSink
) -> EbpfResult:
    on_event(
        ProbeRefused(
            investigation_id=plan.investigation_id,
            step=plan.step,
            host=host,
            name=program.name,
            requested=requested_label(program),
            reason=reason,
        )
    )
    return EbpfResult(
        program_name=program.name,
        resolved_from=requested_label(program),
        error=f"refused: {reason}",
        summary=f"not run: {reason}",
    )


def _progress_sink(
    plan: StepPlan, host: str, runnable: list[_Resolved], on_event: EventSink
) -> Callable[[ProbeProgress], None]:
    """The runner's progress as metrics, and a ProbeStarted event once a probe is attached."""
    by_label = {item.request.label: item for item in runnable}
    timer = metrics.ProbeTimer()

    def progress(report: ProbeProgress) -> None:
        timer(report)
        item = by_label.get(report.label)
        if item is None or report.phase != "attached":
            return
        on_event(
            ProbeStarted(
                investigation_id=plan.investigation_id,
                step=plan.step,
                host=host,
                name=item.program.name,
                probe=report.probe,
                requested=requested_label(item.program),
                attach_points=[p for p in report.detail.split(", ") if p],
                duration_s=item.request.duration_s,
                ends_at=report.ends_at,
            )
        )

    return progress


def _finished(
    plan: StepPlan, host: str, item: _Resolved, probe_result: ProbeResult, on_event: EventSink
) -> EbpfResult:
    result = EbpfResult.model_validate(
        {
            **probe_result.model_dump(),
            "program_name": item.program.name,
            "resolved_from": probe_result.resolved_from or item.resolved_from,
        }
    )
    on_event(
        ProbeFinished(
            investigation_id=plan.investigation_id,
            step=plan.step,
            host=host,
            name=item.program.name,
            event_count=result.event_count,
            summary=result.summary,
            error=result.error,
        )
    )
    return result
