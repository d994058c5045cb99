"""The system prompt: this host's capabilities and probe catalog, rendered from data."""

from __future__ import annotations

import json

from probes.capabilities import HostCapabilities, detect_capabilities
from probes.catalog import load_catalog
from probes.spec import ProbeSpec
from worker.backends.base import reply_tool_schema
from worker.flows.loader import load_flows
from worker.loop.prompts import CatalogProbeView, FlowView, HostView, SystemContext, render_system


def load_catalog_specs() -> list[ProbeSpec]:
    """Every valid probe of this host's catalog, by name."""
    catalog = load_catalog()
    return [catalog.probes[name] for name in catalog.names()]


def catalog_view(spec: ProbeSpec) -> CatalogProbeView:
    params = []
    for name, param in spec.params.items():
        bounds = ""
        if param.type == "int":
            bounds = f" {param.min}..{param.max}"
        elif param.type == "choice":
            bounds = " one of " + "|".join(param.choices)
        default = f", default {param.default}" if param.default is not None else ""
        params.append(f"{name} ({param.type}{bounds}{default}): {param.description}")
    return CatalogProbeView(
        name=spec.name,
        description=spec.description,
        answers=spec.answers,
        attach=[point.label for group in spec.attach for point in group.any_of],
        params=params,
        default_duration_s=spec.duration.default,
        max_duration_s=spec.duration.max,
        overhead=spec.overhead,
    )


def flow_views() -> list[FlowView]:
    """The flows the model may ask for by name (built-in and the operators')."""
    flows = load_flows()
    views = []
    for name in flows.names():
        flow = flows.flows[name]
        runs = []
        if flow.sensors:
            runs.append("probes " + ", ".join(s.probe for s in flow.sensors))
        if flow.commands:
            runs.append("commands " + ", ".join(s.id for s in flow.commands))
        views.append(FlowView(name=flow.name, description=flow.description, runs=runs))
    return views


def system_context(
    hosts: list[HostView],
    specs: list[ProbeSpec],
    max_steps: int,
    flows: list[FlowView] | None = None,
) -> SystemContext:
    wrapped = reply_tool_schema()
    schema = {**wrapped["properties"]["reply"], "$defs": wrapped["$defs"]}
    return SystemContext(
        hosts=hosts,
        catalog=[catalog_view(spec) for spec in specs],
        flows=flows or [],
        reply_schema=json.dumps(schema, separators=(",", ":")),
        max_steps=max_steps,
    )


def hosts_system_prompt(
    host_names: list[str], max_steps: int, capabilities: list[HostCapabilities]
) -> str:
    """The system prompt for `host_names`, from their published capabilities.

    A host without published capabilities is described by this machine's (the CLI case).
    """
    published = {caps.hostname: caps for caps in capabilities}
    local: HostCapabilities | None = None
    hosts = []
    for name in host_names:
        caps = published.get(name)
        if caps is None:
            local = local or detect_capabilities()
            caps = local
        hosts.append(HostView.from_capabilities(caps, name))
    return render_system(system_context(hosts, load_catalog_specs(), max_steps, flow_views()))


def local_system_prompt(
    host_names: list[str], max_steps: int, capabilities: HostCapabilities | None = None
) -> str:
    """The system prompt for hosts that are all this machine (the CLI, tests)."""
    caps = capabilities or detect_capabilities()
    hosts = [HostView.from_capabilities(caps, name) for name in host_names]
    return render_system(system_context(hosts, load_catalog_specs(), max_steps, flow_views()))
