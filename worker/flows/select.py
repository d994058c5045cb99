"""Which flows fit a symptom: the offline planner's step 1 is these flows' requests.

A flow is picked when its `cues` appear in the symptom (operator flows name their services
this way) or when it serves one of the symptom's best categories. Flows marked `triage: true`
come first in every investigation.
"""

from __future__ import annotations

import re

from worker.flows.loader import FlowSet
from worker.flows.models import Flow


def _mentions(symptom: str, cue: str) -> bool:
    pattern = r"(?<![a-z0-9])" + re.escape(cue).replace(r"\ ", r"\s+")
    return re.search(pattern, symptom.lower()) is not None


def cued_flows(symptom: str, flows: FlowSet) -> list[Flow]:
    return [
        flows.flows[name]
        for name in flows.names()
        if any(_mentions(symptom, cue) for cue in flows.flows[name].cues)
    ]


def triage_flows(flows: FlowSet) -> list[Flow]:
    return [flows.flows[name] for name in flows.names() if flows.flows[name].triage]


def flows_for_categories(categories: list[str], flows: FlowSet) -> list[Flow]:
    """Per category in order, its flows (built-in first, then the operators')."""
    chosen: list[Flow] = []
    for category in categories:
        serving = [f for f in flows.flows.values() if category in f.categories]
        serving.sort(key=lambda f: (flows.source_of(f.name) != "builtin", f.name))
        chosen += [f for f in serving if f not in chosen]
    return chosen


def select_flows(symptom: str, categories: list[str], flows: FlowSet) -> list[Flow]:
    """Triage flows, then flows cued by the symptom, then those of its categories."""
    chosen: list[Flow] = []
    for flow in [
        *triage_flows(flows),
        *cued_flows(symptom, flows),
        *flows_for_categories(categories, flows),
    ]:
        if flow not in chosen:
            chosen.append(flow)
    return chosen
