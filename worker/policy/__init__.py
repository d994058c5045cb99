"""The command policy: may this command line run on a host, and why (DESIGN.md §6).

`evaluate(command)` splits the text into pipeline stages of argv (no shell, ever) and gives one
verdict with a reason:

- `allow`: every stage is a known read-only diagnostic called in a read-only way, and every stage
  after a `|` is a text filter;
- `deny`: some stage destroys, writes, changes privileges or system state, reaches out over the
  network, runs an interpreter or another command, or the text needs a shell (redirections, `$`,
  backticks, `;`, `&&`, ...) or hides characters;
- `needs_approval`: everything else (unknown programs, secret-looking paths, long-running forms).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re

from pydantic import BaseModel, Field

from worker.policy.expand import TooManyPaths, expand_word
from worker.policy.invocation import VERDICT_RANK, Finding, Invocation, approval, deny
from worker.policy.lexer import ShellSyntaxError, Word, split_pipeline
from worker.policy.network import (
    NETWORK_PROGRAMS,
    destinations_of,
    parse_destinations,
    remote_option_reason,
)
from worker.policy.paths import sensitive_path_reason
from worker.policy.programs import FILTERS, PROGRAMS, denied_program_reason
from worker.policy.scripts import sed_transliterates
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
        destinations = get_settings().allowed_destinations
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


_WHITESPACE_SET = re.compile(r"(?:\\[0ntr\\]|\\0{1,3}|[ ,:;|=\t]|\[:(?:space|blank):\])+")


def _transforms(name: str, inv: Invocation) -> bool:
    """Does this stage encode, compress or rewrite characters (so redaction cannot see)?"""
    if name == "tr":
        return not all(_WHITESPACE_SET.fullmatch(operand) for operand in inv.positionals)
    if name in {"gzip", "xz", "bzip2", "zstd"}:
        return not inv.has("-d", "--decompress")
    if name == "sed":
        scripts = inv.values("-e", "--expression") or inv.positionals[:1]
        return any(sed_transliterates(script) for script in scripts)
    rule = PROGRAMS.get(name)
    return rule is not None and rule.transforms and name not in {"gunzip", "unxz"}


# Only stat and list what they are given; they never open a device.
_STAT_ONLY = frozenset({"ls", "stat", "readlink", "realpath", "du", "find"})
_BLOCK_DEVICE = re.compile(
    r"/dev/(?:sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+(?:n[0-9]+)?|mmcblk[0-9]+|dm-[0-9]+|"
    r"md[0-9]*|loop[0-9]+|sr[0-9]+|nbd[0-9]+|zd[0-9]+|mapper/|disk/by-|md/)[A-Za-z0-9_.:/-]*"
)


def device_reason(path: str, *, metadata_only: bool = False) -> str | None:
    """Why a program that reads content may not read `path` unattended: a device or /proc/kmsg.

    Metadata tools (lsblk, smartctl) may name block devices; nothing else reads a device:
    devices are endless (`/dev/zero`), raw disks, terminals and input devices, or arm a reboot
    when opened (`/dev/watchdog`); `/proc/kmsg` consumes the kernel log. Symlinks are followed.
    """
    if "/" not in path:
        return None
    normal = posixpath.normpath(posixpath.join("/", path))
    normal = "/" + normal.lstrip("/")
    candidates = [normal]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(os.path.realpath(normal))
    for candidate in candidates:
        if candidate == "/dev/null" or (metadata_only and _BLOCK_DEVICE.fullmatch(candidate)):
            continue
        if candidate == "/dev" or candidate.startswith("/dev/"):
            return (
                f"{path} is a device: endless, a disk, a terminal or a watchdog (read only "
                "through a metadata tool such as lsblk or smartctl)"
            )
        if candidate == "/proc/kmsg":
            return f"{path}: reading /proc/kmsg consumes the kernel log (use dmesg)"
        if candidate.endswith("/trace_pipe") and "/tracing/" in candidate:
            return f"{path}: reading trace_pipe consumes the trace and blocks"
    return None


def _looks_like_address(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", text))


def _network_finding(name: str, inv: Invocation, destinations: str) -> Finding | None:
    targets = destinations_of(inv)
    if isinstance(targets, str):
        return approval(targets)
    allowed = parse_destinations(destinations)
    for target in targets:
        if not allowed.allows(target):
            how = "" if _looks_like_address(target) else " (its name goes to DNS resolvers)"
            return approval(
                f"{name} reaches {target!r}{how}, which is not on BPFSLEUTH_ALLOWED_DESTINATIONS"
            )
    return None


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
            secret = sensitive_path_reason(path, raw_devices=reads_content)
            if secret is None and name not in _STAT_ONLY:
                secret = device_reason(path, metadata_only=not reads_content)
            if secret:
                path_findings.append(approval(f"{name}: {secret}"))
                break
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
        remote = remote_option_reason(name, args)
        if remote is not None:
            findings.append(approval(remote))
        if name in NETWORK_PROGRAMS:
            reach = _network_finding(name, inv, destinations)
            if reach is not None:
                findings.append(reach)
        if _transforms(name, inv) and (index > 0 or (name != "tr" and inv.positionals)):
            findings.append(
                approval(
                    f"`{name}` transforms what an earlier stage or a file gave it (encodes, "
                    "compresses or rewrites characters), which defeats redaction"
                )
            )
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
