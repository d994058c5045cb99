"""How much a finding has to do with the symptom: the process it names, its object, its theme.

A finding's `score` is how strong its evidence is. Before ranking, the planner multiplies it by
its relevance to the symptom, so that a loud but unrelated process (a cron job failing to open a
missing file, a batch job using a third of a CPU) loses to a quieter one the symptom is about:

- the process the symptom names ("payments is dropping batches" -> `payments-api`), or its
  parent or child, when such a process exists in the evidence: `NAMED_PROCESS`;
- the object the symptom names (a path, a file name, a port): `NAMED_OBJECT`;
- the theme: the symptom's words for this kind of failure ("permission", "disk", "full", "too
  many open files", "timeout", "reset", "crash", "memory", "slow"...): `THEME`;
- none of these: `UNRELATED`. When the symptom names a process that exists and the finding is
  about another one, `OTHER_PROCESS` applies instead: a finding about an unrelated process needs
  to be about twice as strong to outrank one about the named process.

The result is a factor (at most 1) and the reasons, which the root cause quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from worker.backends.base import Evidence

NAMED_PROCESS = 1.0
NAMED_OBJECT = 0.95
THEME = 0.95
UNRELATED = 0.6
OTHER_PROCESS = 0.5
MIN_NAME = 3  # a symptom word shorter than this never names a process
_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_.\-/]*[a-z0-9]|[a-z0-9]")
_COMM_KEYS = ("comm", "top_process", "process", "target", "parent")
_PROC_RE = re.compile(r"([^\s()]{1,15}) \(pid (\d+)\)")  # a comm is at most 15 bytes
_PS_HEADERS = ("COMMAND", "COMM", "CMD")
_PID_COMM_RE = re.compile(r"^\s*\d+\s+(\S{1,15})\s*$")  # `pgrep -l`: pid, then comm
_WORD_RE = re.compile(r"^[a-z][a-z0-9_.\-]*$")
MAX_NAME_WORDS = 8
# Words that are never a service's name, however a comm starts.
_STOP = (
    "the and for are but not all any can its has had was were with from this that since after "
    "into when then than them they our out too very just some been have will what why how who "
    "app api svc service server host box job jobs disk file files logs log process processes "
    "top load request requests call calls cron local daemon agent backend worker workers"
)
STOPWORDS = frozenset(_STOP.split())


class Subject(BaseModel):
    """What a finding is about, for the relevance check."""

    comm: str = ""
    pid: int | None = None
    related: list[str] = Field(default_factory=list, description="Parent or child comms.")
    objects: list[str] = Field(default_factory=list, description="Paths, addresses, ports.")
    themes: list[str] = Field(default_factory=list, description="Symptom words for this kind.")


@dataclass(frozen=True)
class Relevance:
    factor: float
    reasons: tuple[str, ...] = ()

    def text(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class SymptomView:
    """The symptom as words, plus the processes it names that exist in the evidence."""

    text: str
    tokens: frozenset[str]
    named: set[str] = field(default_factory=set)

    def says(self, phrase: str) -> bool:
        """A theme word or phrase at a word start (stems match any ending)."""
        pattern = r"(?<![a-z0-9])" + re.escape(phrase.lower()).replace(r"\ ", r"\s+")
        return re.search(pattern, self.text) is not None


def normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    return re.sub(r"\bcan ?not\b", "can't", text)


def tokens_of(text: str) -> frozenset[str]:
    return frozenset(_TOKEN_RE.findall(normalise(text)))


def names(token: str, comm: str) -> bool:
    """Does symptom word `token` name process `comm`? `payments` names `payments-api` and
    `paymentsd`; `payments-api-worker` names the comm cut to 15 characters."""
    comm = comm.lower()
    if len(token) < MIN_NAME or len(comm) < MIN_NAME or token in STOPWORDS:
        return False
    if token == comm:
        return True
    if comm.startswith(token):
        rest = comm[len(token) :]
        return not rest[:1].isalpha() or len(rest) <= 2 or len(token) >= 5
    return len(comm) >= 12 and token.startswith(comm)


def evidence_comms(evidence: Evidence) -> set[str]:
    """Every process name the evidence shows: probe rows' labels and keys, `ps`/`pidstat`
    listings."""
    comms: set[str] = set()
    for result in evidence.results:
        for run in result.ebpf_results.values():
            for rows in run.aggregates.top.values():
                for row in rows:
                    for key in _COMM_KEYS:
                        value = row.labels.get(key)
                        if isinstance(value, str) and value:
                            comms.add(_PROC_RE.sub(r"\1", value))
                    comms.update(m.group(1) for m in _PROC_RE.finditer(row.key))
            for event in run.events:
                name = event.get("process_name")
                if isinstance(name, str):
                    comms.add(name)
        for command in result.command_results.values():
            comms.update(_listing_comms(command.stdout))
    return {c.strip() for c in comms if c.strip()}


def name_words(symptom: str) -> list[str]:
    """The symptom's words that could name a process (`payments` in "payments is slow"): at
    least MIN_NAME letters, not a stopword, letters/digits/`.-_` only; at most MAX_NAME_WORDS,
    longest first. What `pgrep` is asked about, to find the processes the symptom names."""
    words = {t for t in tokens_of(symptom) if len(t) >= MIN_NAME and t not in STOPWORDS}
    kept = sorted((w for w in words if _WORD_RE.match(w)), key=lambda w: (-len(w), w))
    return kept[:MAX_NAME_WORDS]


def _listing_comms(stdout: str) -> Iterable[str]:
    lines = stdout.splitlines()
    if not lines:
        return []
    pid_comm = [m.group(1) for line in lines if (m := _PID_COMM_RE.match(line))]
    if pid_comm and len(pid_comm) == len([line for line in lines if line.strip()]):
        # `pgrep -l`: every line is "pid comm"; per-CPU kernel threads (migration/0) never
        # are the service a symptom names
        return [c for c in pid_comm if "/" not in c]
    header = lines[0].split()
    at = next((header.index(h) for h in _PS_HEADERS if h in header), None)
    out = []
    for line in lines[1:]:
        fields = line.split()
        if at is not None and len(fields) > at:
            out.append(fields[at])
        elif fields and fields[0] == "Average:":
            out.append(fields[-1])
    out.extend(m.group(1) for m in re.finditer(r'users:\(\("([^"]+)"', stdout))
    return out


def view(evidence: Evidence) -> SymptomView:
    text = normalise(evidence.symptom)
    tokens = tokens_of(evidence.symptom)
    comms = evidence_comms(evidence)
    named = {c for c in comms if any(names(t, c) for t in tokens)}
    return SymptomView(text=text, tokens=tokens, named=named)


def named_first(symptom: SymptomView) -> list[str]:
    """The named processes, the one named earliest in the symptom first ("ledger can't reach
    pricing": ledger-gw, then pricingd)."""

    def at(comm: str) -> tuple[int, str]:
        spots = [m.start() for t in symptom.tokens if names(t, comm) for m in _word_at(symptom, t)]
        return (min(spots, default=len(symptom.text)), comm)

    return sorted(symptom.named, key=at)


def _word_at(symptom: SymptomView, token: str) -> list[re.Match[str]]:
    return list(re.finditer(r"(?<![a-z0-9])" + re.escape(token), symptom.text))


def _object_named(symptom: SymptomView, obj: str) -> bool:
    obj = obj.lower()
    if not obj:
        return False
    if obj in symptom.text:
        return True
    parts = [p for p in re.split(r"[/:\[\]@]+", obj) if p]
    leaf = parts[-1] if parts else ""
    if leaf.isdigit():
        return leaf in symptom.tokens and len(leaf) >= 2
    stem = leaf.split(".")[0]
    return len(stem) >= 4 and stem not in STOPWORDS and stem in symptom.tokens


def relevance(symptom: SymptomView, subject: Subject) -> Relevance:
    reasons: list[str] = []
    factor = UNRELATED
    comms = [subject.comm, *subject.related] if subject.comm else list(subject.related)
    hit = next((c for c in comms if c and c in symptom.named), None)
    if hit is None:
        hit = next((c for c in comms if c and any(names(t, c) for t in symptom.tokens)), None)
    if hit is not None:
        reasons.append(f"the symptom names {hit}")
        factor = NAMED_PROCESS
    objects = [o for o in subject.objects if _object_named(symptom, o)]
    if objects:
        reasons.append(f"the symptom mentions {objects[0]}")
        factor = max(factor, NAMED_OBJECT)
    themes = [t for t in subject.themes if symptom.says(t)]
    if themes:
        reasons.append(f"it matches '{themes[0]}' in the symptom")
        factor = max(factor, THEME) if hit is None else factor
        if objects and hit is None:
            factor = NAMED_PROCESS
    if hit is None and symptom.named and not objects:
        shown = ", ".join(sorted(symptom.named)[:2])
        reasons.append(f"the symptom names {shown}, not {subject.comm or 'this process'}")
        factor = min(factor, OTHER_PROCESS if not themes else UNRELATED)
    return Relevance(factor=factor, reasons=tuple(reasons))
