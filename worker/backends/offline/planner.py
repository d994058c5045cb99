"""The offline runbook planner: triage, dig deeper on the strongest finding, conclude.

- Step 1: the broad triage plus the runbooks of the symptom's categories (`runbooks`).
- Steps 2+: the analyzers read every result. The strongest finding (ranked by its score, with
  a small bonus when it explains the symptom's category) asks once for its `next` requests (a
  listener check, a probe filtered to the culprit's pid, ...). When nothing stands out, the
  general set's probes not run yet are the next net. Otherwise, or at the last step, resolve.
- Every finding's score is weighed by its relevance to the symptom first (`relevance`: the
  process or object the symptom names, its theme words, else a penalty), so background noise
  loses to a weaker finding about what the symptom is about.
- Confidence comes from the best finding's weighed score: >= 0.8 High, >= 0.5 Medium, else Low;
  a Low answer says what it could not see.
"""

from __future__ import annotations

import re
import shlex

from probes.catalog import load_catalog
from worker.analysis.analyzers import HIGH, MEDIUM, Finding, analyze
from worker.analysis.categories import CUES, Category, categorise
from worker.analysis.evidence import cmd, parse_proc
from worker.analysis.relevance import (
    UNRELATED,
    Subject,
    SymptomView,
    name_words,
    relevance,
    view,
)
from worker.backends.base import Evidence, ModelAnswer, ModelRequest, PriorExchange, TokenUsage
from worker.backends.offline.focus import focus_step, merged
from worker.backends.offline.runbooks import broadening_plan, chosen_flows, flows_plan
from worker.protocol import (
    MAX_COMMANDS_PER_STEP,
    CommandRequest,
    Confidence,
    Diagnostic,
    Resolution,
)

TOP_CATEGORY_BONUS = 0.1
OTHER_CATEGORY_BONUS = 0.05
SUPPORTING_MIN = 0.5  # other findings about the same process are cited from this score
_PID_RE = re.compile(r"pid (\d+)")
NAMED_PROCESSES = "named_processes"  # step 1's `pgrep` of the symptom's words


def available_probes() -> set[str]:
    return set(load_catalog().names())


def confidence_of(score: float) -> Confidence:
    if score >= HIGH:
        return "High"
    if score >= MEDIUM:
        return "Medium"
    return "Low"


def subject_of(finding: Finding) -> Subject:
    """A finding's subject: its own, else its culprit's process and its category's words."""
    if finding.subject is not None:
        return finding.subject
    proc = parse_proc(finding.culprit)
    themes = [stem for stem, _ in CUES.get(finding.category, ())]  # type: ignore[call-overload]
    _, _, obj = finding.culprit.partition(" -> ")
    return Subject(
        comm=proc.comm if proc else "",
        pid=proc.pid if proc else None,
        objects=[obj] if obj else [],
        themes=themes,
    )


def weigh(evidence: Evidence, findings: list[Finding]) -> list[Finding]:
    """Each finding's score times its relevance to the symptom, with the reason quoted."""
    symptom: SymptomView = view(evidence)
    out = []
    for finding in findings:
        subject = subject_of(finding)
        if finding.subject is None:
            # a special analyzer's finding that explains the named process's trouble (the
            # waiter behind a CPU hog, the client of a refusing port) is about it too
            mentioned = [c for c in symptom.named if f"{c} (pid" in finding.root_cause]
            subject = subject.model_copy(update={"related": [*subject.related, *mentioned]})
        found = relevance(symptom, subject)
        note = f" (Relevance to the symptom: {found.text()}.)" if found.reasons else ""
        out.append(
            finding.model_copy(
                update={
                    "score": round(min(1.0, finding.score * found.factor), 3),
                    "root_cause": finding.root_cause + note,
                    "relevance": found.factor,
                }
            )
        )
    return out


def findings_for(evidence: Evidence) -> list[Finding]:
    """Every analyzer's findings, weighed by relevance, best first."""
    return rank(weigh(evidence, analyze(evidence)), categorise(evidence.symptom))


def rank(findings: list[Finding], categories: list[Category]) -> list[Finding]:
    """Strongest first; a finding that explains the symptom's category wins a tie, unless it
    is about another process than the one the symptom names (its relevance is that low): the
    category must not lift a CPU hog elsewhere over the named service's own slow lookups."""

    def weight(finding: Finding) -> float:
        if finding.relevance <= UNRELATED:
            return finding.score
        if categories and finding.category == categories[0]:
            return finding.score + TOP_CATEGORY_BONUS
        if finding.category in categories:
            return finding.score + OTHER_CATEGORY_BONUS
        return finding.score

    return sorted(findings, key=lambda f: -weight(f))


def asked_before(history: list[PriorExchange]) -> set[str]:
    """Ids of every command and program name requested at earlier steps."""
    asked: set[str] = set()
    for exchange in history:
        reply = exchange.reply
        if isinstance(reply, Diagnostic):
            asked |= {c.id for c in reply.commands} | {p.name for p in reply.ebpf_programs}
    return asked


def named_processes_command(symptom: str) -> CommandRequest | None:
    """`pgrep -l` of the symptom's words that could name a process: whether `ledger` in
    "ledger is slow" is a process here, and its exact comm (quiet processes are not among the
    busiest ones the triage lists)."""
    words = name_words(symptom)
    if not words:
        return None
    pattern = "^(" + "|".join(w.replace(".", "[.]") for w in words) + ")"  # ERE, for pgrep
    return cmd(
        NAMED_PROCESSES,
        f"pgrep -l -i {shlex.quote(pattern)}",
        "processes the symptom may name",
    )


def triage(evidence: Evidence, probes: set[str]) -> Diagnostic | None:
    categories = categorise(evidence.symptom)
    flows = chosen_flows(categories, evidence.symptom)
    commands, programs = flows_plan(flows, probes)
    pgrep = named_processes_command(evidence.symptom)
    if pgrep is not None and commands:
        commands = [pgrep, *commands][:MAX_COMMANDS_PER_STEP]
    if not commands and not programs:
        return None
    named = [c for c in categories if c != "general"][:2]
    reading = " and ".join(named) if named else "no clear category"
    return Diagnostic(
        reasoning=(
            f"The symptom reads as {reading}. Triage: load, the kernel log, memory, disk, "
            "sockets and the busiest processes, plus the probes that answer "
            + ("a general set of questions." if "general" in categories else "its questions.")
            + f" Flows: {', '.join(flow.name for flow in flows)}."
        ),
        commands=commands,
        ebpf_programs=programs,
    )


def dig_deeper(finding: Finding, asked: set[str], probes: set[str]) -> Diagnostic | None:
    """The finding's confirming requests, unless any of them was asked already."""
    step = finding.next
    if step is None or step.ids() & asked:
        return None
    programs = [p for p in step.programs if p.target in probes]
    if not step.commands and not programs:
        return None
    return Diagnostic(
        reasoning=f"Suspect ({finding.analyzer}): {finding.culprit}. Next: {step.why}",
        commands=step.commands,
        ebpf_programs=programs,
    )


def broaden(asked: set[str], probes: set[str]) -> Diagnostic | None:
    commands, programs = broadening_plan(asked, probes)
    if not commands and not programs:
        return None
    return Diagnostic(
        reasoning=(
            "Nothing in the evidence so far explains the symptom; widening the net with the "
            "general probes not run yet."
        ),
        commands=commands,
        ebpf_programs=programs,
    )


def _same_culprit(finding: Finding, best: Finding) -> bool:
    """Another analyzer's finding about the best finding's process (e.g. its CPU use)."""
    pids = set(_PID_RE.findall(best.culprit))
    return finding.analyzer != best.analyzer and bool(pids & set(_PID_RE.findall(finding.culprit)))


def unseen(evidence: Evidence) -> str:
    """What the investigation could not see: probes that failed, and the blind spots of the
    probes that ran (a process that fails silently, a fault between two probe windows)."""
    failed = sorted(
        {
            run.probe
            for result in evidence.results
            for run in result.ebpf_results.values()
            if run.error
        }
    )
    text = (
        "Nothing in the evidence ties it to the symptom; what the probes could not see: "
        "failures that leave no failing system call, exit or wait (a process that hangs "
        "quietly, errors inside a library or a remote peer), and anything outside the probe "
        "windows."
    )
    if failed:
        text += f" Probes that failed here: {', '.join(failed)}."
    return text


def conclude(evidence: Evidence, findings: list[Finding] | None = None) -> Resolution:
    if findings is None:
        findings = findings_for(evidence)
    if not findings:
        return Resolution(
            root_cause=(
                "Not determined: the triage commands and probes showed nothing abnormal "
                f"for '{evidence.symptom[:200]}'."
            ),
            resolution_plan=(
                "1. Reproduce the symptom while re-running the investigation.\n"
                "2. Name the process (pid or comm) to narrow the probes."
            ),
            confidence="Low",
            ebpf_evidence="No probe reported activity related to the symptom.",
        )
    best = findings[0]
    others = [
        f.ebpf_evidence
        for f in findings[1:]
        if f.ebpf_evidence and f.score >= SUPPORTING_MIN and _same_culprit(f, best)
    ]
    confidence = confidence_of(best.score)
    root_cause = best.root_cause
    if confidence == "Low":
        root_cause = f"Only a weak lead (Low confidence): {root_cause} {unseen(evidence)}"
    return Resolution(
        root_cause=root_cause[:4000],
        resolution_plan=best.resolution_plan[:6000],
        confidence=confidence,
        ebpf_evidence="\n".join([best.ebpf_evidence, *others])[:4000],
    )


def plan_next(
    evidence: Evidence, history: list[PriorExchange], probes: set[str], *, final: bool
) -> Diagnostic | Resolution:
    """The planner's move at any step."""
    if not history and not final:
        first = triage(evidence, probes)
        if first is not None:
            return first
    findings = findings_for(evidence)
    if not final:
        asked = asked_before(history)
        # the process the symptom names, when nothing found is about it: asked first, beside
        # the rest (relevance.py: a named process that runs here dominates the ranking)
        focus = focus_step(evidence, findings, asked, probes)
        if findings and findings[0].score >= MEDIUM:
            deeper = dig_deeper(findings[0], asked, probes)
            if deeper is not None:
                return merged(focus, deeper)
        else:
            wider = broaden(asked, probes)
            if wider is not None:
                return merged(focus, wider)
            for finding in findings[:2]:
                deeper = dig_deeper(finding, asked, probes)
                if deeper is not None:
                    return merged(focus, deeper)
        if focus is not None:
            return focus
    return conclude(evidence, findings)


class OfflineBackend:
    """A planner with the model interface: no network, no tokens, deterministic."""

    name = "offline"
    model = "runbook-planner"

    def __init__(self, probes: set[str] | None = None) -> None:
        self._probes = probes

    def ask(self, request: ModelRequest) -> ModelAnswer:
        probes = self._probes if self._probes is not None else available_probes()
        reply = plan_next(request.evidence, request.history, probes, final=request.final)
        return ModelAnswer(
            reply=reply,
            raw=reply.model_dump_json(),
            usage=TokenUsage(calls=1),
            model=self.model,
        )
