"""The shape of a per-program rule and the reusable checks the tables are built from."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from worker.policy.invocation import (
    Finding,
    Invocation,
    approval,
    deny,
    is_number,
    long_option_matches,
    parse_invocation,
    worst,
)
from worker.policy.spec import Spec, parse_with_spec
from worker.protocol import Verdict

Check = Callable[[Invocation], Finding | None]


@dataclass(frozen=True)
class ProgramRule:
    """How one allowlisted program may be called.

    `deny_options` / `approve_options` map an option (`-i`, `--in-place`; long options match
    any unambiguous prefix, as getopt does) to the reason. `check` sees the parsed invocation
    for rules that need more than option lists (subcommands, counts, embedded scripts).
    """

    summary: str
    short_with_arg: str = ""
    long_with_arg: frozenset[str] = frozenset()
    deny_options: Mapping[str, str] = field(default_factory=dict)
    approve_options: Mapping[str, str] = field(default_factory=dict)
    max_positionals: int | None = None
    extra_positional_reason: str = ""
    filter: bool = False
    check: Check | None = None
    spec: Spec | None = None  # the option allowlist (worker/policy/allowlist.py)
    approval_only: str = ""  # why every use needs a human (tracers, capture, remote services)
    metadata_only: bool = False  # reads only metadata of a device (lsblk), never its content
    transforms: bool = False  # encodes or compresses its input (defeats redaction)

    def judge(self, program: str, args: list[str]) -> tuple[Finding | None, Invocation]:
        """The worst of: the known-bad option tables and checks, and the allowlist.

        The invocation returned is the allowlist's reading (exact option names) when the
        program has one.
        """
        inv = parse_invocation(
            program, args, short_with_arg=self.short_with_arg, long_with_arg=self.long_with_arg
        )
        findings: list[Finding | None] = []
        for option in inv.options:
            for table, make in ((self.deny_options, deny), (self.approve_options, approval)):
                for known, reason in table.items():
                    if long_option_matches(option.name, known):
                        findings.append(make(f"{program} {option.name}: {reason}"))
        if self.max_positionals is not None and len(inv.positionals) > self.max_positionals:
            findings.append(deny(f"{program}: {self.extra_positional_reason}"))
        if self.check is not None:
            findings.append(self.check(inv))
        strict = inv
        if self.spec is not None:
            parsed = parse_with_spec(program, args, self.spec)
            strict = parsed.invocation
            if parsed.problems:
                findings.append(approval(f"{parsed.problems[0]} (not on the allowlist)"))
        elif self.approval_only:
            findings.append(approval(f"{program}: {self.approval_only}"))
        else:
            findings.append(approval(f"{program}: no option allowlist"))
        return worst(findings), strict


def subcommands(
    *,
    allow: Collection[str],
    deny_verbs: Collection[str] = (),
    deny_reason: str = "changes system state",
    bare_ok: bool = True,
    bare_reason: str = "",
    unknown_verdict: Verdict = "needs_approval",
) -> Check:
    """A `program [options] verb ...` rule: allowed verbs, denied verbs, anything else approval."""

    def check(inv: Invocation) -> Finding | None:
        if not inv.positionals:
            return None if bare_ok else approval(f"{inv.program}: {bare_reason}")
        verb = inv.positionals[0]
        if verb in allow:
            return None
        if verb in deny_verbs:
            return deny(f"{inv.program} {verb}: {deny_reason}")
        if unknown_verdict == "deny":
            return deny(f"{inv.program} {verb}: not a read-only subcommand; {deny_reason}")
        return approval(f"{inv.program} {verb}: not a known read-only subcommand")

    return check


def follow_mode(*options: str) -> Mapping[str, str]:
    """Options that keep a program running until the timeout (needs approval)."""
    return dict.fromkeys(options, "follows forever; it would run until the timeout kills it")


def sampling(max_total_s: float = 60.0) -> Check:
    """`tool [interval [count]]`: an interval without a count samples forever."""

    def check(inv: Invocation) -> Finding | None:
        numbers = [p for p in inv.positionals if is_number(p)]
        if len(numbers) == 1:
            return approval(
                f"{inv.program} {numbers[0]}: an interval without a count runs until the timeout; "
                "add a count (e.g. `1 5`)"
            )
        if len(numbers) >= 2:
            total = float(numbers[-2]) * float(numbers[-1])
            if total > max_total_s:
                return approval(
                    f"{inv.program}: {numbers[-2]} s x {numbers[-1]} samples is longer than "
                    f"{max_total_s:.0f} s"
                )
        return None

    return check


def option_int(inv: Invocation, *names: str) -> float | None:
    values = inv.values(*names)
    if not values:
        return None
    return float(values[-1]) if is_number(values[-1]) else float("inf")
