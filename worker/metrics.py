"""Every Prometheus metric bpfsleuth exports, and the small functions the seams call.

Import this module only after `worker.metrics_env.prepare()` ran in the process (the bot and the
workers do it first thing): prometheus_client picks its multiprocess storage, shared by Celery's
prefork children, when it is imported. The names and labels are the contract `docs/metrics.md`
documents; labels take only bounded values (probe names, verdicts, Slack methods).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

from worker.settings import MetricsSettings

if TYPE_CHECKING:
    from probes.engine.runner import ProbeProgress
    from probes.models import ProbeResult
    from worker.distributed.store import StepMeta, StepOutcome
    from worker.loop.investigation import Investigation
    from worker.protocol import CommandResult

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
_SHORT = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)

INVESTIGATIONS_STARTED = Counter(
    "bpfsleuth_investigations_started_total", "Investigations started.", ["kind"]
)
INVESTIGATIONS_FINISHED = Counter(
    "bpfsleuth_investigations_finished_total",
    "Investigations finished, by how (model, flow, synthesised, error...) and confidence.",
    ["outcome", "confidence"],
)
INVESTIGATION_SECONDS = Histogram(
    "bpfsleuth_investigation_duration_seconds", "Start to resolution.", buckets=_SECONDS
)
INVESTIGATION_ITERATIONS = Histogram(
    "bpfsleuth_investigation_iterations",
    "Steps an investigation took.",
    buckets=(0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
)
STEP_SECONDS = Histogram(
    "bpfsleuth_step_duration_seconds",
    "Dispatch to close of a step, by how it closed (complete|deadline).",
    ["closed"],
    buckets=_SECONDS,
)
STEP_SILENT_HOSTS = Counter(
    "bpfsleuth_step_silent_hosts_total", "Hosts that did not answer a step before its deadline."
)
PROBE_RUNS = Counter(
    "bpfsleuth_probe_runs_total",
    "Probe runs, by probe and outcome (ok|error).",
    ["probe", "outcome"],
)
PROBE_COMPILE_SECONDS = Histogram(
    "bpfsleuth_probe_compile_seconds",
    "BPF compile time (0 for a kept probe).",
    ["probe"],
    buckets=_SHORT,
)
PROBE_ATTACH_SECONDS = Histogram(
    "bpfsleuth_probe_attach_seconds", "Compiled to attached.", ["probe"], buckets=_SHORT
)
PROBE_EVENTS_DROPPED = Counter(
    "bpfsleuth_probe_events_dropped_total", "Events the kernel dropped (ring full).", ["probe"]
)
COMMANDS = Counter(
    "bpfsleuth_commands_total",
    "Commands asked for, by policy verdict and outcome "
    "(ran|timed_out|denied|held|refused: allowed but refused by the sandbox).",
    ["verdict", "outcome"],
)
SLACK_CALLS = Counter(
    "bpfsleuth_slack_calls_total",
    "Slack Web API calls, by method and HTTP status.",
    ["method", "status"],
)
SLACK_RATE_LIMITED = Counter(
    "bpfsleuth_slack_rate_limited_total",
    "Slack 429 answers (each waited out and retried).",
    ["method"],
)
SLACK_SECONDS = Histogram(
    "bpfsleuth_slack_call_seconds", "Slack Web API call latency.", ["method"], buckets=_SHORT
)
MODEL_CALLS = Counter(
    "bpfsleuth_model_calls_total",
    "Model turns, by backend and outcome (ok|error).",
    ["backend", "outcome"],
)
MODEL_SECONDS = Histogram(
    "bpfsleuth_model_call_seconds", "Model turn latency.", ["backend"], buckets=_SECONDS
)
MODEL_TOKENS = Counter(
    "bpfsleuth_model_tokens_total",
    "Model tokens, by backend and kind (input|output).",
    ["backend", "kind"],
)


# seams -------------------------------------------------------------------------------------
def investigation_started(inv: Investigation) -> None:
    INVESTIGATIONS_STARTED.labels(kind="flow" if inv.flow else "model").inc()


def investigation_finished(inv: Investigation) -> None:
    confidence = inv.resolution.confidence if inv.resolution is not None else "none"
    outcome = inv.resolution_source or inv.status
    INVESTIGATIONS_FINISHED.labels(outcome=outcome, confidence=confidence).inc()
    end = inv.finished_at or inv.updated_at
    INVESTIGATION_SECONDS.observe(max(0.0, (end - inv.created_at).total_seconds()))
    INVESTIGATION_ITERATIONS.observe(len(inv.plans))


def step_closed(meta: StepMeta, outcome: StepOutcome) -> None:
    dispatched_at = meta.deadline_at - meta.deadline_s
    STEP_SECONDS.labels(closed=outcome.closed).observe(max(0.0, time.time() - dispatched_at))
    if outcome.missing_hosts:
        STEP_SILENT_HOSTS.inc(len(outcome.missing_hosts))


def model_turns(inv: Investigation, since: int) -> None:
    """The turns `inv` took from index `since` on (one `_decide`)."""
    for turn in inv.turns[since:]:
        backend = turn.backend or "unknown"
        MODEL_CALLS.labels(backend=backend, outcome="error" if turn.error else "ok").inc()
        if turn.finished_at is not None:
            MODEL_SECONDS.labels(backend=backend).observe(
                max(0.0, (turn.finished_at - turn.started_at).total_seconds())
            )
        usage = turn.usage
        MODEL_TOKENS.labels(backend=backend, kind="input").inc(
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        )
        MODEL_TOKENS.labels(backend=backend, kind="output").inc(usage.output_tokens)


def command_finished(result: CommandResult) -> None:
    if result.ran:
        outcome = "timed_out" if result.timed_out else "ran"
    elif result.verdict == "deny":
        outcome = "denied"
    elif result.verdict == "needs_approval":
        outcome = "held"
    else:
        outcome = "refused"
    COMMANDS.labels(verdict=result.verdict, outcome=outcome).inc()


def probes_finished(results: Iterable[ProbeResult]) -> None:
    for result in results:
        probe = result.probe or "unknown"
        PROBE_RUNS.labels(probe=probe, outcome="error" if result.error else "ok").inc()
        if result.error is None:
            PROBE_COMPILE_SECONDS.labels(probe=probe).observe(result.compile_s)
        if result.dropped:
            PROBE_EVENTS_DROPPED.labels(probe=probe).inc(result.dropped)


class ProbeTimer:
    """Feed it the runner's progress reports: it observes compiled-to-attached per probe."""

    def __init__(self) -> None:
        self._compiled: dict[str, float] = {}

    def __call__(self, report: ProbeProgress) -> None:
        if report.phase == "compiled":
            self._compiled[report.label] = time.monotonic()
        elif report.phase == "attached" and report.label in self._compiled:
            PROBE_ATTACH_SECONDS.labels(probe=report.probe).observe(
                time.monotonic() - self._compiled.pop(report.label)
            )


def slack_call(method: str, status: int, seconds: float) -> None:
    SLACK_CALLS.labels(method=method, status=str(status)).inc()
    SLACK_SECONDS.labels(method=method).observe(seconds)


def slack_rate_limited(method: str) -> None:
    SLACK_RATE_LIMITED.labels(method=method).inc()


# exposure ----------------------------------------------------------------------------------
def start_exporter(port: int, bind: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve /metrics on `port` from a daemon thread: every process's samples (multiprocess
    mode) when PROMETHEUS_MULTIPROC_DIR is set, else this process's."""
    if MetricsSettings().multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=bind, registry=registry)
    else:
        start_http_server(port, addr=bind)
