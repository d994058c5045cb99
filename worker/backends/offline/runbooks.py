"""Runbooks as data: the broad triage, then per category the commands and catalog probes to run.

Step 1 of every investigation is `TRIAGE` (what an SRE runs in the first minute: load, the kernel
log's tail, memory, disk, a socket summary, the top processes) plus the runbooks of the symptom's
best categories. A probe is only asked for when this host's catalog has it, so a plan never names
a probe that cannot run; requests in the seed's form (`kprobe:tcp_connect`, ...) are the
model's. The lists themselves are flows (`worker/flows/*.yaml`, see `worker.flows`): edit the
YAML, not this module. Operators' flows (BPFSLEUTH_FLOW_PATH) are chosen the same way, by their
`categories` or by `cues` in the symptom.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, Field

from worker.analysis.categories import Category
from worker.flows.expand import flow_requests
from worker.flows.loader import builtin_flows, load_flows
from worker.flows.models import Flow
from worker.flows.select import select_flows
from worker.protocol import MAX_COMMANDS_PER_STEP, CommandRequest, EbpfProgramRequest

PROBE_DURATION_S = 3.0


class ProbeStep(BaseModel):
    probe: str
    duration_s: float = PROBE_DURATION_S
    params: dict[str, int | float | bool | str] = Field(default_factory=dict)
    why: str

    def request(self) -> EbpfProgramRequest:
        return EbpfProgramRequest(
            name=self.probe,
            type="catalog",
            target=self.probe,
            duration=self.duration_s,
            params=self.params,
            description=self.why,
        )


class Runbook(BaseModel):
    category: Category
    commands: list[CommandRequest] = Field(default_factory=list)
    probes: list[ProbeStep] = Field(default_factory=list)


def _runbook_of(flow: Flow, category: Category) -> Runbook:
    commands, programs = flow_requests(flow)
    return Runbook(
        category=category,
        commands=commands,
        probes=[
            ProbeStep(probe=p.target, duration_s=p.duration, params=p.params, why=p.description)
            for p in programs
        ],
    )


def _builtin_runbooks() -> tuple[list[CommandRequest], dict[Category, Runbook]]:
    """The built-in flows as the planner's data: the triage commands and a runbook per category."""
    flows = builtin_flows()
    triage = [c for flow in flows if flow.triage for c in flow_requests(flow)[0]]
    runbooks: dict[Category, Runbook] = {}
    for category in get_args(Category):
        serving = next((f for f in flows if category in f.categories), None)
        if serving is not None:
            runbooks[category] = _runbook_of(serving, category)
    return triage, runbooks


# Step 1's lists live in the flows (worker/flows/*.yaml); these views keep the old names.
TRIAGE, RUNBOOKS = _builtin_runbooks()
BASELINE = TRIAGE  # the name the first planner used

MAX_TRIAGE_PROBES = 7  # the triage's 3 (syscall failures, process exits, dns) + 4


def triage_plan(
    categories: list[Category],
    available_probes: set[str],
    *,
    max_categories: int = 2,
    symptom: str = "",
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """The requests of the flows that fit: triage flows, flows cued by the symptom, then the
    flows of the best categories (and `general` when it is among them); no duplicates, at most
    `MAX_TRIAGE_PROBES` probes, only probes this host's catalog has."""
    return flows_plan(chosen_flows(categories, symptom, max_categories), available_probes)


def chosen_flows(categories: list[Category], symptom: str, max_categories: int = 2) -> list[Flow]:
    """The flows step 1 runs: built-in and operators' (BPFSLEUTH_FLOW_PATH) alike."""
    chosen: list[str] = list(categories[:max_categories])
    if "general" in categories and "general" not in chosen:
        chosen.append("general")
    return select_flows(symptom, chosen, load_flows())


def flows_plan(
    flows: list[Flow], available_probes: set[str]
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    commands: dict[str, CommandRequest] = {}
    programs: dict[str, EbpfProgramRequest] = {}
    for flow in flows:
        flow_commands, flow_programs = flow_requests(flow)
        for command in flow_commands:
            if len(commands) < MAX_COMMANDS_PER_STEP:
                commands.setdefault(command.id, command)
        for program in flow_programs:
            if program.target in available_probes and len(programs) < MAX_TRIAGE_PROBES:
                programs.setdefault(program.name, program)
    return list(commands.values()), list(programs.values())


def broadening_plan(
    already: set[str], available_probes: set[str]
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """The general set's commands and probes not asked yet: the next net when nothing stood out."""
    book = RUNBOOKS["general"]
    commands = [c for c in book.commands if c.id not in already]
    programs = [
        step.request()
        for step in book.probes
        if step.probe in available_probes and step.probe not in already
    ]
    return commands, programs
