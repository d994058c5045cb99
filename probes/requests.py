"""What a caller may ask for, before resolution: the seed's `{type, target}` forms.

`ProbeAsk` is the resolver's input. The worker's `EbpfProgramRequest` maps onto it field by field;
probes never import the worker.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from probes.models import MAX_PROBE_DURATION_S, ParamValue, ProbeFilters

AskType = Literal["tracepoint", "kprobe", "kretprobe", "uprobe", "catalog"]
_TYPES: tuple[AskType, ...] = ("tracepoint", "kprobe", "kretprobe", "uprobe", "catalog")
_TARGET_RE = re.compile(r"^[A-Za-z0-9_.:/*@-]{1,128}$")


class ProbeAsk(BaseModel):
    """A request as the model writes it: `{"type": "kprobe", "target": "tcp_connect", ...}`."""

    model_config = ConfigDict(extra="forbid")

    type: AskType
    target: str = Field(min_length=1, max_length=128)
    label: str = ""
    duration_s: float | None = Field(default=None, gt=0, le=MAX_PROBE_DURATION_S)
    filters: ProbeFilters = Field(default_factory=ProbeFilters)
    params: dict[str, ParamValue] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """The request in the catalog's `answers:` form, e.g. `kprobe:tcp_connect`."""
        return request_key(self.type, self.target)


def _split_type_prefix(kind: str, target: str) -> tuple[str, str]:
    """`tracepoint` + `tracepoint:sched:x` -> (`tracepoint`, `sched:x`); a prefix names the type."""
    head, sep, rest = target.partition(":")
    if sep and head in _TYPES and rest:
        return head, rest
    return kind, target


def request_key(kind: str, target: str) -> str:
    """Normalise a (type, target) pair to one string.

    kprobe/kretprobe/uprobe -> `kprobe:X`; tracepoint `cat/name` or `cat:name` -> `cat/name`;
    catalog -> `catalog:name`.
    """
    kind, target = _split_type_prefix(kind.strip().lower(), target.strip())
    if kind in ("kprobe", "kretprobe", "uprobe", "catalog"):
        return f"{kind}:{target}"
    if "/" not in target and target.count(":") == 1:
        target = target.replace(":", "/")
    return target


def normalise_answer(answer: str) -> str:
    """An `answers:` entry in normal form: `kprobe:X`, `uprobe:lib:sym` or `category/name`."""
    answer = answer.strip()
    head, sep, rest = answer.partition(":")
    if sep and head in _TYPES:
        return request_key(head, rest)
    return request_key("tracepoint", answer)


def target_is_wellformed(target: str) -> bool:
    return bool(_TARGET_RE.match(target))
