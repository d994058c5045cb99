"""A diagnostic that names a flow (`{"flow": "network_debug"}`) becomes the flow's commands and
probes, merged with whatever else the diagnostic asked for (first of each id kept)."""

from __future__ import annotations

from worker.flows.expand import merge_requests
from worker.flows.loader import load_flows, unknown_flow_message
from worker.protocol import Diagnostic


def expand_flow(diagnostic: Diagnostic) -> Diagnostic:
    """The diagnostic with its flow's requests added; unchanged when it names none (or an
    unknown one: the parser already refused those from a model, a stored plan keeps its own)."""
    if diagnostic.flow is None:
        return diagnostic
    flows = load_flows()
    flow = flows.get(diagnostic.flow)
    if flow is None:
        note = unknown_flow_message(diagnostic.flow, flows)
        return diagnostic.model_copy(
            update={"reasoning": f"{diagnostic.reasoning} (not run: {note})".strip()}
        )
    commands, programs = merge_requests(diagnostic, flow)
    reasoning = diagnostic.reasoning or f"Flow {flow.name}: {flow.description}"
    return diagnostic.model_copy(
        update={"commands": commands, "ebpf_programs": programs, "reasoning": reasoning}
    )
