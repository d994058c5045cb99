"""A flow as the loop's "model": step 1 runs the flow, step 2 concludes with its analyzers.

`/diagnose flow <name>` (Slack) and `bpfsleuth flows run --host` start an investigation whose
`flow` is set; the loop then asks this backend instead of a model, so the flow's commands and
probes run on the hosts' queues like any plan, their outputs are posted step by step, and the
resolution comes from the analyzers the flow names (the offline planner's conclusion).
"""

from __future__ import annotations

import logging

from worker.analysis.analyzers import load_analyzers
from worker.backends.base import ModelAnswer, ModelRequest, TokenUsage
from worker.backends.offline.planner import conclude
from worker.flows.loader import load_flows, unknown_flow_message
from worker.protocol import Diagnostic, Resolution

log = logging.getLogger(__name__)


class FlowBackend:
    name = "flow"

    def __init__(self, flow_name: str) -> None:
        self.flow_name = flow_name
        self.model = f"flow:{flow_name}"

    def _answer(self, reply: Diagnostic | Resolution) -> ModelAnswer:
        return ModelAnswer(
            reply=reply, raw=reply.model_dump_json(), usage=TokenUsage(calls=1), model=self.model
        )

    def ask(self, request: ModelRequest) -> ModelAnswer:
        flows = load_flows()
        flow = flows.get(self.flow_name)
        if flow is None:
            return self._answer(
                Resolution(
                    root_cause=f"Not run: {unknown_flow_message(self.flow_name, flows)}.",
                    resolution_plan="Pick a flow from `bpfsleuth flows list` and run it again.",
                    confidence="Low",
                )
            )
        ran = any(isinstance(turn.reply, Diagnostic) for turn in request.history)
        if not ran and not request.final:
            return self._answer(
                Diagnostic(flow=flow.name, reasoning=f"Flow {flow.name}: {flow.description}")
            )
        registry = load_analyzers()
        names = [name for step in flow.analyses for name in step.analyzers] or list(registry)
        findings = []
        for name in dict.fromkeys(names):
            analyzer = registry.get(name)
            if analyzer is not None:
                try:
                    findings.extend(analyzer(request.evidence))
                except Exception:  # one broken analyzer must not lose the flow's answer
                    log.exception("analyzer %s failed", name)
        findings.sort(key=lambda f: -f.score)
        return self._answer(conclude(request.evidence, findings))
