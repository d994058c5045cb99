"""One pipeline stage parsed into options and positionals, and what a rule concludes about it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from worker.protocol import Verdict

VERDICT_RANK: dict[Verdict, int] = {"allow": 0, "needs_approval": 1, "deny": 2}


@dataclass(frozen=True)
class Finding:
    """A rule's conclusion about one stage: a verdict and the reason for it."""

    verdict: Verdict
    reason: str


def deny(reason: str) -> Finding:
    return Finding("deny", reason)


def approval(reason: str) -> Finding:
    return Finding("needs_approval", reason)


def worst(findings: Iterable[Finding | None]) -> Finding | None:
    """The most severe finding (deny > needs_approval > allow); the first one on a tie."""
    best: Finding | None = None
    for finding in findings:
        if finding is not None and (
            best is None or VERDICT_RANK[finding.verdict] > VERDICT_RANK[best.verdict]
        ):
            best = finding
    return best


@dataclass(frozen=True)
class Option:
    """`-c 3` is Option('-c', '3'); `--count=3` is Option('--count', '3'); `-n` has no value."""

    name: str
    value: str | None = None


@dataclass
class Invocation:
    program: str
    args: list[str]
    options: list[Option] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        """Any of `names` given (long names also as getopt's unambiguous prefixes)."""
        return any(_matches_any(option.name, names) for option in self.options)

    def values(self, *names: str) -> list[str]:
        return [
            o.value for o in self.options if o.value is not None and _matches_any(o.name, names)
        ]


def _matches_any(given: str, names: tuple[str, ...]) -> bool:
    return any(long_option_matches(given, name) for name in names)


def is_number(text: str) -> bool:
    """A finite decimal number (`nan` and `inf` are not counts or intervals)."""
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)


def parse_invocation(
    program: str,
    args: list[str],
    *,
    short_with_arg: str = "",
    long_with_arg: frozenset[str] = frozenset(),
    negative_numbers_are_positional: bool = True,
) -> Invocation:
    """getopt-style parsing: short clusters (`-tlnp`), attached values (`-c3`), `--long[=v]`, `--`.

    Options may appear after positionals (GNU permutation). A value-taking short option takes the
    rest of its cluster or the next argument, so its value is never mistaken for options.
    """
    inv = Invocation(program=program, args=list(args))
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            inv.positionals.extend(args[index:])
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                inv.options.append(Option(name, value))
            elif index < len(args) and _matches_any(name, tuple(long_with_arg)):
                inv.options.append(Option(name, args[index]))
                index += 1
            else:
                inv.options.append(Option(name))
            continue
        if arg.startswith("-") and len(arg) > 1:
            if negative_numbers_are_positional and is_number(arg):
                inv.positionals.append(arg)
                continue
            cluster = arg[1:]
            for position, letter in enumerate(cluster):
                if letter in short_with_arg:
                    rest = cluster[position + 1 :]
                    if rest:
                        inv.options.append(Option("-" + letter, rest))
                    elif index < len(args):
                        inv.options.append(Option("-" + letter, args[index]))
                        index += 1
                    else:
                        inv.options.append(Option("-" + letter))
                    break
                inv.options.append(Option("-" + letter))
            continue
        inv.positionals.append(arg)
    return inv


def long_option_matches(given: str, known: str) -> bool:
    """GNU getopt accepts any unambiguous prefix of a long option (`--out` for `--output`)."""
    if not (given.startswith("--") and known.startswith("--")):
        return given == known
    return given == known or (len(given) >= 3 and known.startswith(given))
