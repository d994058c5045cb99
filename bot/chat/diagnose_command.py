"""`/diagnose` text -> one command model, or a `CommandError` whose message a person can act on.

Forms: `help`, `hosts`, `handoff`, `flow <name> [host,host]` and `[host,host] <symptom>`. A
first word is read as hosts when it holds a comma (`web-1,web-2`), is bracketed (`[web-1]`) or
names a live host; otherwise the whole text is the symptom and the default hosts are used.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from worker.flows.models import FLOW_NAME_RE

HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
MIN_SYMPTOM = 3
MAX_SYMPTOM = 2000
MAX_HOSTS = 16
_HOST_RE = re.compile(HOST_PATTERN)
HostName = Annotated[str, Field(pattern=HOST_PATTERN)]
FLOW_EXAMPLE = "/diagnose flow network_debug web-1,web-2"
EXAMPLE = "/diagnose web-1 app randomly fails to connect to the database"


class CommandError(ValueError):
    """What is wrong with the text, phrased for the person who typed it."""


class HelpCommand(BaseModel):
    kind: Literal["help"] = "help"


class HostsCommand(BaseModel):
    kind: Literal["hosts"] = "hosts"


class HandoffCommand(BaseModel):
    kind: Literal["handoff"] = "handoff"


class InvestigateCommand(BaseModel):
    kind: Literal["investigate"] = "investigate"
    hosts: list[HostName] = Field(
        default_factory=list, max_length=MAX_HOSTS, description="Empty: the default hosts."
    )
    symptom: str = Field(min_length=MIN_SYMPTOM, max_length=MAX_SYMPTOM)


class FlowCommand(BaseModel):
    """`/diagnose flow <name> [hosts]`: run a flow (named runbook) on the hosts."""

    kind: Literal["flow"] = "flow"
    name: str = Field(pattern=FLOW_NAME_RE.pattern)
    hosts: list[HostName] = Field(
        default_factory=list, max_length=MAX_HOSTS, description="Empty: the default hosts."
    )

    @property
    def symptom(self) -> str:
        return f"flow {self.name}"


DiagnoseCommand = Annotated[
    HelpCommand | HostsCommand | HandoffCommand | InvestigateCommand | FlowCommand,
    Field(discriminator="kind"),
]

_KEYWORDS: dict[str, HelpCommand | HostsCommand | HandoffCommand] = {
    "help": HelpCommand(),
    "hosts": HostsCommand(),
    "handoff": HandoffCommand(),
}


def _split_hosts(word: str) -> list[str]:
    return [part.strip() for part in word.strip("[]").split(",") if part.strip()]


def _host_list(text: str) -> list[str]:
    """The host names of `web-1,web-2` (or `[web-1]`), each valid, none twice, not too many."""
    hosts = _split_hosts(text)
    if not hosts or not all(_HOST_RE.match(host) for host in hosts):
        raise CommandError(
            f"`{text[:60]}` is not a list of host names; write them like `web-1,web-2`."
        )
    if len(set(hosts)) != len(hosts):
        raise CommandError("A host is named twice.")
    if len(hosts) > MAX_HOSTS:
        raise CommandError(f"At most {MAX_HOSTS} hosts per investigation.")
    return hosts


def _parse_flow(rest: str, known_hosts: Collection[str]) -> FlowCommand:
    name, _, hosts_text = rest.partition(" ")
    if not name:
        raise CommandError(f"Name the flow to run, e.g. `{FLOW_EXAMPLE}`.")
    if not FLOW_NAME_RE.match(name):
        raise CommandError(f"`{name[:40]}` is not a flow name (lowercase letters, digits, _).")
    if " " in hosts_text:
        raise CommandError(f"After the flow name, only hosts: `{FLOW_EXAMPLE}`.")
    hosts = _host_list(hosts_text) if hosts_text else []
    unknown = [host for host in hosts if known_hosts and host not in known_hosts]
    if unknown:
        raise CommandError(
            f"No live host named {', '.join(f'`{h}`' for h in unknown)}. "
            "`/diagnose hosts` shows the live ones."
        )
    return FlowCommand(name=name, hosts=hosts)


def parse_diagnose(
    text: str, known_hosts: Collection[str] = ()
) -> HelpCommand | HostsCommand | HandoffCommand | InvestigateCommand | FlowCommand:
    """Parse what followed `/diagnose`. `known_hosts` are the live hosts, when known."""
    stripped = " ".join(text.split())
    if not stripped:
        raise CommandError(f"Say what is wrong, e.g. `{EXAMPLE}`. `/diagnose help` lists the rest.")
    first, _, rest = stripped.partition(" ")
    if first.lower() == "flow":
        return _parse_flow(rest, known_hosts)
    keyword = _KEYWORDS.get(first.lower())
    if keyword is not None:
        if rest:
            raise CommandError(f"`{first.lower()}` takes nothing after it (got `{rest[:40]}`).")
        return keyword
    explicit = "," in first or (first.startswith("[") and first.endswith("]"))
    if explicit or first in known_hosts:
        hosts = _host_list(first)
        symptom = rest
        if known_hosts:
            unknown = [host for host in hosts if host not in known_hosts]
            if unknown:
                live = ", ".join(sorted(known_hosts)[:20])
                raise CommandError(
                    f"No live host named {', '.join(f'`{h}`' for h in unknown)}. "
                    f"Live hosts: {live}. `/diagnose hosts` shows them all."
                )
        if not symptom:
            raise CommandError(f"Say what is wrong after the hosts, e.g. `{EXAMPLE}`.")
    else:
        hosts, symptom = [], stripped
    if len(symptom) < MIN_SYMPTOM:
        raise CommandError(f"`{symptom}` is too short to investigate; describe the symptom.")
    if len(symptom) > MAX_SYMPTOM:
        raise CommandError(
            f"The symptom is {len(symptom)} characters; keep it under {MAX_SYMPTOM}."
        )
    try:
        return InvestigateCommand(hosts=hosts, symptom=symptom)
    except ValidationError as exc:  # pragma: no cover - the checks above come first
        raise CommandError(str(exc.errors()[0]["msg"])) from None
