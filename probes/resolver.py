"""Map a request (`kprobe:tcp_connect`, `syscalls/sys_enter_openat`, a catalog name...) to the
catalog probe that will run here, and say why, or refuse clearly with the nearest probes.

Order: a catalog name (type `catalog`, or any target that is a probe name); a probe whose
`answers:` lists the request and that can run here; for an existing tracepoint, the generic
`tracepoint` probe; otherwise a refusal naming the nearest probes.
"""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import BaseModel, Field

from probes.capabilities import TRACEFS
from probes.catalog import Catalog, load_catalog
from probes.engine.plan import plan_attach
from probes.engine.tracefs import IDENT_RE, tracepoint_exists
from probes.models import ParamValue, ProbeRequest
from probes.params import ProbeRequestError, validate_params
from probes.requests import ProbeAsk, request_key
from probes.spec import ProbeSpec

GENERIC_PROBE = "tracepoint"
GENERIC_PARAM = "tracepoint"

How = Literal["catalog", "answers", "generic", "refused"]


class ResolvedProbe(BaseModel):
    """The resolver's answer: which probe, with which parameters, and why."""

    asked: str = Field(description="The request in normal form, e.g. kprobe:tcp_connect.")
    how: How
    probe: str | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)
    reason: str
    nearest: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.how != "refused"


def nearest_names(word: str, names: list[str], limit: int = 3) -> list[str]:
    return difflib.get_close_matches(word, names, n=limit, cutoff=0.4)


def _nearest_probes(asked: str, catalog: Catalog) -> list[str]:
    """Probes whose name or answers look like the request, best first."""
    bare = asked.split(":", 1)[-1].split("/")[-1]
    scores: dict[str, float] = {}
    for spec in catalog.probes.values():
        candidates = [
            spec.name,
            *spec.answers,
            *(a.split(":")[-1].split("/")[-1] for a in spec.answers),
        ]
        best = max(
            difflib.SequenceMatcher(None, probe_word, candidate).ratio()
            for candidate in candidates
            for probe_word in (asked, bare)
        )
        scores[spec.name] = best
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    return [name for name, score in ranked[:3] if score >= 0.4]


def _with_category(key: str) -> str:
    """`sys_enter_openat` -> `syscalls/sys_enter_openat` when exactly one category has it."""
    if "/" in key or ":" in key or not IDENT_RE.match(key):
        return key
    events = TRACEFS / "events"
    if not events.is_dir():
        return key
    found = [c.name for c in events.iterdir() if (c / key / "format").is_file()]
    return f"{found[0]}/{key}" if len(found) == 1 else key


def _availability(spec: ProbeSpec, params: dict[str, ParamValue]) -> str | None:
    """None when `spec` can run here with these parameters, else why not."""
    try:
        values = validate_params(spec, params)
    except ProbeRequestError as exc:
        return str(exc)
    plan = plan_attach(spec, values)
    return None if plan.available else plan.reason


def _refuse(asked: str, catalog: Catalog, why: str) -> ResolvedProbe:
    near = _nearest_probes(asked, catalog)
    hint = f"; nearest probes: {', '.join(near)}" if near else ""
    return ResolvedProbe(asked=asked, how="refused", reason=f"{why}{hint}", nearest=near)


def resolve_key(asked: str, catalog: Catalog | None = None) -> ResolvedProbe:
    """Resolve a request already in normal form (see `probes.requests.request_key`)."""
    catalog = catalog or load_catalog()
    kind, _, rest = asked.partition(":")
    if kind == "catalog" or asked in catalog or asked in catalog.blocked:
        name = rest if kind == "catalog" else asked
        spec = catalog.get(name)
        if spec is None and name in catalog.blocked:
            return _refuse(asked, catalog, catalog.blocked[name])
        if spec is None:
            return _refuse(asked, catalog, f"no catalog probe named {name!r}")
        problem = _availability(spec, {})
        if problem and name != GENERIC_PROBE:
            return _refuse(asked, catalog, f"probe {name} cannot run on this host: {problem}")
        return ResolvedProbe(asked=asked, how="catalog", probe=name, reason=f"catalog probe {name}")
    asked = _with_category(asked)
    unavailable = []
    for spec in sorted(catalog.probes.values(), key=lambda s: s.name):
        if asked not in spec.answers:
            continue
        params = dict(spec.answer_params.get(asked, {}))
        problem = _availability(spec, params)
        if problem is None:
            how_text = f"{spec.name} answers {asked}"
            if params:
                how_text += " with " + ", ".join(f"{k}={v}" for k, v in params.items())
            return ResolvedProbe(
                asked=asked,
                how="answers",
                probe=spec.name,
                params=params,
                reason=f"{how_text} on this host's attach points",
            )
        unavailable.append(f"{spec.name} answers {asked} but cannot run here: {problem}")
    if kind == "kretprobe" and not unavailable:
        # a return probe asks about the same function: whatever answers kprobe:X answers it
        via_entry = resolve_key(f"kprobe:{rest}", catalog)
        if via_entry.ok:
            return via_entry.model_copy(update={"asked": asked})
    category, sep, name = asked.partition("/")
    is_tracepoint = sep == "/" and ":" not in asked
    if is_tracepoint and "*" in asked:
        return _refuse(asked, catalog, f"no catalog probe answers the wildcard {asked}")
    if is_tracepoint and GENERIC_PROBE in catalog and tracepoint_exists(category, name):
        return ResolvedProbe(
            asked=asked,
            how="generic",
            probe=GENERIC_PROBE,
            params={GENERIC_PARAM: f"{category}:{name}"},
            reason=f"no catalog probe answers {asked}; the generic tracepoint probe counts its "
            "events by process",
        )
    if unavailable:
        return _refuse(asked, catalog, "; ".join(unavailable))
    if is_tracepoint:
        return _refuse(asked, catalog, f"tracepoint {asked} does not exist on this host")
    if kind in ("kprobe", "kretprobe"):
        return _refuse(
            asked,
            catalog,
            f"no catalog probe answers {asked}, and kernel functions cannot be probed directly "
            "(probes use stable tracepoints only)",
        )
    return _refuse(asked, catalog, f"no catalog probe answers {asked}")


def resolve(ask: ProbeAsk, catalog: Catalog | None = None) -> ResolvedProbe:
    """Which probe answers `ask` here, and why (or a refusal with the nearest probes)."""
    return resolve_key(ask.key, catalog)


def resolve_target(kind: str, target: str, catalog: Catalog | None = None) -> ResolvedProbe:
    return resolve_key(request_key(kind, target), catalog)


def to_probe_request(
    ask: ProbeAsk, resolved: ResolvedProbe, catalog: Catalog | None = None
) -> ProbeRequest:
    """The runnable request for a successful resolution; durations are capped by the spec."""
    if resolved.probe is None:
        raise ProbeRequestError(resolved.reason)
    catalog = catalog or load_catalog()
    spec = catalog.probes[resolved.probe]
    duration = ask.duration_s or spec.duration.default
    return ProbeRequest(
        probe=resolved.probe,
        label=ask.label,
        duration_s=min(duration, spec.duration.max),
        filters=ask.filters,
        params={**resolved.params, **ask.params},
    )
