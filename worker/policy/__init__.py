"""The command policy: may this command line run on a host, and why (docs/architecture.md §5).

`evaluate(command)` splits the text into pipeline stages of argv (no shell, ever) and gives one
verdict with a reason:

- `allow`: every stage is an allowlisted program whose every option, value and operand is on its
  allowlist (allowlist.py, parsed as the program parses it: spec.py), every stage after a `|` is
  a text filter, nothing reads a device or defeats redaction, and every network destination is
  listed (effects.py, network.py);
- `deny`: some stage destroys, writes, changes privileges or system state, reaches out over the
  network, runs an interpreter or another command, or the text needs a shell (redirections, `$`,
  backticks, `;`, `&&`, ...) or hides characters;
- `needs_approval`: everything else (unknown programs, options or values, abbreviations,
  secret-looking paths, long-running forms, unlisted destinations). docs/policy.md has the rest.
"""

from __future__ import annotations

import posixpath
import re

from pydantic import BaseModel, Field

from worker.policy.effects import STAT_ONLY, device_reason, stage_effects
from worker.policy.expand import TooManyPaths, expand_word
from worker.policy.invocation import VERDICT_RANK, Finding, approval, deny
from worker.policy.lexer import ShellSyntaxError, Word, split_pipeline
from worker.policy.paths import path_verdict, sensitive_path_reason
from worker.policy.programs import FILTERS, PROGRAMS, denied_program_reason
from worker.protocol import Verdict
from worker.settings import get_settings

__all__ = [
    "SYSTEM_BIN_DIRS",
    "PolicyDecision",
    "denied_program_reason",
    "evaluate",
    "sensitive_path_reason",
]

SYSTEM_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


class PolicyDecision(BaseModel):
    """The verdict on one command line, why, and the argv of each pipeline stage."""

    verdict: Verdict
    reason: str
    stages: list[list[str]] = Field(
        default_factory=list, description="argv per pipeline stage (empty when unparseable)"
    )


def evaluate(command: str, *, destinations: str | None = None) -> PolicyDecision:
    """Judge one command line; never raises for any input text.

    Unquoted globs are expanded against the file system (as a shell would), so the verdict and
    `stages` describe the paths that would actually be read. `destinations` overrides
    `BPFSLEUTH_ALLOWED_DESTINATIONS` (hosts and CIDRs network tools may reach unattended).
    """
    try:
        stages = split_pipeline(command)
    except ShellSyntaxError as exc:
        return PolicyDecision(verdict="deny", reason=str(exc))
    except Exception as exc:
        return PolicyDecision(verdict="deny", reason=f"cannot parse the command: {exc}")
    if destinations is None:
        try:
            destinations = get_settings().allowed_destinations
        except Exception:  # a bad setting elsewhere: reach nothing but loopback unattended
            destinations = ""
    try:
        judged = [_judge_stage(index, stage, destinations) for index, stage in enumerate(stages)]
    except Exception as exc:
        return PolicyDecision(verdict="deny", reason=f"cannot judge the command: {exc}")
    findings = [finding for finding, _ in judged]
    verdict = max((f.verdict for f in findings), key=VERDICT_RANK.__getitem__)
    reasons: list[str] = []
    for finding in findings:
        if finding.verdict == verdict and finding.reason not in reasons:
            reasons.append(finding.reason)
    if verdict == "allow":
        reason = "read-only diagnostics: " + " | ".join(reasons)
    else:
        reason = "; ".join(reasons)
    return PolicyDecision(verdict=verdict, reason=reason, stages=[argv for _, argv in judged])


def _program_name(word: Word) -> tuple[str, Finding | None]:
    """The program's basename, and a finding when the way it is written is itself a problem."""
    text = word.text
    if not text:
        return "", deny("empty program name")
    if not text.isascii():
        return text, deny(f"non-ASCII character in program name {text!r} (look-alike?)")
    if word.quoted:
        return text, deny(
            f"quoted or escaped program name {text!r} (an evasion pattern); write it plainly"
        )
    if word.unquoted_glob or any(c in text for c in "*?[]"):
        return text, deny(f"glob characters in program name {text!r}")
    if word.unquoted_tilde:
        return text, deny(f"`~` in program path {text!r}")
    if "/" not in text:
        denied = denied_program_reason(text)
        if denied:
            return text, deny(denied)
        if not _NAME.fullmatch(text):
            return text, deny(f"unusual program name {text!r}")
        return text, None
    normal = posixpath.normpath(text)
    name = posixpath.basename(normal)
    denied = denied_program_reason(name)
    if denied:
        return name, deny(denied)
    if not text.startswith("/"):
        return name, deny(f"relative program path {text!r} runs a file of unknown origin")
    if normal != text:
        return name, deny(f"non-canonical program path {text!r} (an evasion pattern)")
    if not _NAME.fullmatch(name):
        return name, deny(f"unusual program name {name!r}")
    if posixpath.dirname(normal) not in SYSTEM_BIN_DIRS:
        return name, approval(f"{text} is outside the system program directories")
    return name, None


_RELATIVE_PATH = re.compile(r"[\w.@+-]+(?:/[\w.@+-]*)*")


def _names_a_file(word: str) -> bool:
    """A word that is plainly a path (or an option carrying one), not a script or a pattern.

    Absolute and `./`-style paths, and relative ones (commands run in `/`) made only of path
    characters; `0,/root/p` (a sed address) and `s/a.key/b.key/` (a sed script) are not.
    """
    value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
    if value.startswith(("/", "./", "../", "~/")):
        return not any(c.isspace() for c in value)
    return _RELATIVE_PATH.fullmatch(value) is not None and not value.startswith(("s/", "y/"))


def _judge_stage(index: int, stage: list[Word], destinations: str) -> tuple[Finding, list[str]]:
    first = stage[0]
    argv = [word.text for word in stage]
    if _ASSIGNMENT.match(first.unquoted_prefix):
        return deny(f"variable assignment {first.text!r} needs a shell"), argv
    name, name_finding = _program_name(first)
    if name_finding is not None and name_finding.verdict == "deny":
        return name_finding, argv
    findings: list[Finding] = [] if name_finding is None else [name_finding]
    for word in stage[1:]:
        if word.text[:1] in "-+" and not word.text.isascii():
            return deny(f"non-ASCII character in option {word.text!r} (look-alike?)"), argv
    args: list[str] = []
    path_findings: list[Finding] = []
    known = PROGRAMS.get(name)
    reads_content = known is None or not known.metadata_only
    for word in stage[1:]:
        try:
            expanded = expand_word(word)
        except TooManyPaths as exc:
            return approval(f"{name}: {exc}"), argv
        args.extend(expanded)
        if expanded != [word.text] and any(path.startswith("-") for path in expanded):
            findings.append(approval(f"{word.text!r} expands to a name that looks like an option"))
        for path in expanded:  # what will be read; a glob with no match is judged as written
            found = path_verdict(path, raw_devices=reads_content)
            if found is not None and _names_a_file(path):
                path_findings.append(Finding(found.verdict, f"{name}: {found.reason}"))
                continue
            if found is not None and found.verdict == "deny":
                # A script or pattern that merely mentions a secret path (`awk '/shadow/'`)
                # names no file; it asks rather than runs.
                path_findings.append(approval(f"{name}: {found.reason}"))
                continue
            device = (
                None if name in STAT_ONLY else device_reason(path, metadata_only=not reads_content)
            )
            if device:
                path_findings.append(approval(f"{name}: {device}"))
        if word.unquoted_tilde:
            path_findings.append(
                approval(f"`~` in {word.text!r} is not expanded here (no shell); write the path")
            )
    argv = [first.text, *args]
    rule = PROGRAMS.get(name)
    if rule is None:
        findings.append(approval(f"`{name}` is not on the list of known read-only diagnostics"))
    else:
        finding, inv = rule.judge(name, args)
        if finding is not None:
            findings.append(finding)
        findings.extend(stage_effects(name, args, inv, index=index, destinations=destinations))
    if index > 0 and name not in FILTERS:
        findings.append(
            approval(f"`{name}` after `|` is not a text filter (grep, awk, sort, head, ...)")
        )
    findings.extend(path_findings)
    if not findings:
        summary = rule.summary if rule is not None else name
        return Finding("allow", f"{name} ({summary})"), argv
    severity = max(VERDICT_RANK[f.verdict] for f in findings)
    return next(f for f in findings if VERDICT_RANK[f.verdict] == severity), argv
