"""Option allowlists: what each program may be given, and a parser reading argv as it does.

A `Spec` is data: the options a program may take (short and long names; no value, a required
value, or an optional value that must be glued as getopt requires), the values each option may
have (`Kind`), and what its operands may be. `parse_with_spec` reads one stage's argv the way
GNU getopt_long reads it (short clusters, glued values, `--opt=value`, `--`, permutation) and
reports every option or value that is not on the list. It never guesses:

- an abbreviated long option (`--out` for `--output`) or an abbreviated value (`-d rec`) is
  refused with "write --full-name", because how the real program resolves it (and whether a
  later version adds a second match) is not something to bet the host on;
- a single-dash word that is not listed exactly (`-fam`, `-arp`) is an unknown option;
- an option that takes no value given one (`--all=x`) is refused.

Specs are written in a small text notation (see `options`) so a program's allowlist reads like
its manual's synopsis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from worker.policy.invocation import Invocation, Option

# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """What one option value or operand may be; `problem` says why a text is not that."""

    name: str
    pattern: re.Pattern[str] | None = None  # fullmatch; None: anything
    words: frozenset[str] = frozenset()
    low: float | None = None
    high: float | None = None
    integer: bool = False
    separator: str = ""  # a list of items, each judged alone

    def problem(self, value: str) -> str | None:
        if self.separator:
            for item in value.split(self.separator):
                why = self._one(item)
                if why:
                    return why
            return None
        return self._one(value)

    def _one(self, value: str) -> str | None:
        if self.words:
            if value in self.words:
                return None
            longer = sorted(w for w in self.words if value and w.startswith(value))
            if longer:
                return f"value {value!r} is an abbreviation; write {longer[0]!r} in full"
            return f"value {value!r} is not one of {', '.join(sorted(self.words))}"
        if self.low is not None or self.high is not None:
            try:
                number = int(value) if self.integer else float(value)
            except ValueError:
                return f"{value!r} is not {'an integer' if self.integer else 'a number'}"
            if number != number or (self.low is not None and number < self.low):
                return f"{value!r} is below {self.low:g}"
            if self.high is not None and number > self.high:
                return f"{value!r} is above {self.high:g}"
            return None
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"{value!r} is not a {self.name}"
        return None


def _kind(name: str, regex: str | None) -> Kind:
    return Kind(name=name, pattern=None if regex is None else re.compile(regex))


_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]*"
# Named kinds used in the notation; `{a,b}` enumerations and `INT(1..5)` ranges are built inline.
KINDS: dict[str, Kind] = {
    "TEXT": _kind("text", None),  # a pattern, a format, a date: only data to the program
    "PATH": _kind("path", r"[^-].*|-"),  # judged by sensitive_path_reason with every argument
    "NAME": _kind("plain name", _NAME),
    "UNIT": _kind("unit name (no `/`, no `..`)", r"(?!.*\.\.)[A-Za-z0-9_@:.\\*-]+"),
    "PID": _kind("process id", r"[1-9][0-9]{0,9}"),
    "PIDS": Kind(name="process id list", pattern=re.compile(r"[1-9][0-9]{0,9}"), separator=","),
    "USER": _kind("user name or id", r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?"),
    "USERS": Kind(
        name="user list", pattern=re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"), separator=","
    ),
    "IFACE": _kind("interface name", r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,15}"),
    "COLS": _kind("column list", r"[A-Za-z0-9_%:,.+=-]{1,400}"),
    "TIME": _kind("time", r"[A-Za-z0-9 :.,+@-]{1,40}"),
    "SIZE": _kind("size", r"[0-9]{1,12}[KMGTPkmgtp]?i?[Bb]?"),
    "NUM": Kind(name="number", low=0, high=1e9),
    "INT": Kind(name="integer", low=0, high=10**9, integer=True),
    "NONE": Kind(name="nothing", pattern=re.compile(r"(?!)")),  # an optional value never allowed
}


def words(text: str) -> frozenset[str]:
    """The space-separated words of `text` (tables of names read better as one string)."""
    return frozenset(text.split())


def kind_of(text: str) -> Kind:
    """`TEXT` (a name in KINDS), `{a,b,c}`, `{a,b,c},` (a comma list of those), `INT(1..5)`,
    `NUM(0..60)`, or a regex."""
    if text in KINDS:
        return KINDS[text]
    if text.startswith("{") and text.endswith("},"):  # a comma-separated list of the words
        return Kind(name="word list", words=frozenset(text[1:-2].split(",")), separator=",")
    if text.startswith("{") and text.endswith("}"):
        return Kind(name="word", words=frozenset(text[1:-1].split(",")))
    match = re.fullmatch(r"(INT|NUM)\((-?[0-9.]+)\.\.(-?[0-9.]+)\)", text)
    if match:
        return Kind(
            name=match[1].lower(),
            low=float(match[2]),
            high=float(match[3]),
            integer=match[1] == "INT",
        )
    re.compile(text)  # anything else is a regular expression the value must match in full
    return _kind(f"value matching {text}", text)


# -- options and programs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    names: tuple[str, ...]
    value: Kind | None = None  # None: the option takes no value
    optional: bool = False  # an optional value: only glued (`-n5`, `--nofile=5`)


def options(text: str, *, single_dash_long: bool = False) -> tuple[Opt, ...]:
    """Options from the notation `-a --all; -n --lines =INT(1..100); -N ?=NONE`.

    Entries are separated by `;`. In an entry, names start with `-` (or `+`); `-abc` is three
    short flags unless `single_dash_long`; `=KIND` gives a required value, `?=KIND` an optional
    one (glued only).
    """
    out: list[Opt] = []
    for entry in text.split(";"):
        tokens = entry.split()
        if not tokens:
            continue
        names: list[str] = []
        value: Kind | None = None
        optional = False
        for token in tokens:
            if token.startswith("?="):
                value, optional = kind_of(token[2:]), True
            elif token.startswith("="):
                value = kind_of(token[1:])
            elif token.startswith("--") or single_dash_long or len(token) == 2:
                names.append(token)
            elif token[0] in "-+":
                names.extend(token[0] + letter for letter in token[1:])
            else:
                raise ValueError(f"bad option token {token!r}")
        if value is None:
            out.extend(Opt((name,)) for name in names)
        else:
            out.append(Opt(tuple(names), value, optional))
    return tuple(out)


@dataclass(frozen=True)
class Spec:
    """One program's (or one subcommand's) allowlist."""

    opts: tuple[Opt, ...] = ()
    operand: Kind | None = field(default_factory=lambda: KINDS["PATH"])  # None: no operands
    min_operands: int = 0
    max_operands: int | None = None
    subcommands: Mapping[str, Spec] | None = None  # the first operand picks one
    bare_ok: bool = True  # with subcommands: no subcommand at all is fine
    permute: bool = True  # GNU: options may follow operands
    single_dash_long: bool = False  # every option is one word written exactly (find, ip)
    plus_options: bool = False  # `+X` words are options too (lsof)
    negative_numbers: bool = False  # `-5` is an operand, not an option
    count_option: bool = False  # `-5` means a count (`head -5`, `grep -5`): option `-NUM`
    # An optional value may be the next word when it matches this (lsof `-i :80`, journalctl
    # `-b -1`); empty: optional values must be glued, as getopt requires.
    separate_optional: str = ""
    note: str = ""  # why operands are restricted, for the reason text

    @cached_property
    def _table(self) -> dict[str, Opt]:
        return {name: opt for opt in self.opts for name in opt.names}

    def table(self) -> dict[str, Opt]:
        """Option name -> option (computed once per spec; callers must not mutate it)."""
        return self._table


def spec(
    opts: str = "",
    operands: str = "PATH*",
    *,
    subcommands: Mapping[str, Spec] | None = None,
    **kwargs: object,
) -> Spec:
    """A `Spec` from the notation: `operands` is `KIND*` (any number), `KIND?`, `KIND+`,
    `KIND{n}`, `KIND{m,n}` or `none`."""
    single = bool(kwargs.get("single_dash_long", False))
    high: int | None
    if operands == "none":
        kind, low, high = None, 0, 0
    else:
        match = re.fullmatch(r"(.+?)(\*|\?|\+|\{(\d+)(?:,(\d+))?\})", operands)
        if not match:
            raise ValueError(f"bad operands {operands!r}")
        kind = kind_of(match[1])
        low, high = {
            "*": (0, None),
            "?": (0, 1),
            "+": (1, None),
        }.get(match[2], (int(match[3] or 0), int(match[4] or match[3] or 0)))
    return Spec(
        opts=options(opts, single_dash_long=single),
        operand=kind,
        min_operands=low,
        max_operands=high,
        subcommands=subcommands,
        **kwargs,  # type: ignore[arg-type]
    )


# -- parsing ----------------------------------------------------------------------------------


@dataclass
class Parsed:
    invocation: Invocation
    problems: list[str] = field(default_factory=list)
    subcommand: str = ""


def _is_negative_number(text: str) -> bool:
    return bool(re.fullmatch(r"-[0-9]+(?:\.[0-9]+)?", text))


def parse_with_spec(program: str, args: list[str], top: Spec) -> Parsed:
    """Read `args` as `program` would; every word outside the allowlist is a problem."""
    parsed = Parsed(Invocation(program=program, args=list(args)))
    inv = parsed.invocation
    current = top
    table = top.table()
    operands: list[str] = []
    index = 0
    only_operands = False
    while index < len(args):
        arg = args[index]
        index += 1
        if only_operands or len(arg) < 2 or arg[0] not in "-+":
            operands.append(arg)
            if current.subcommands is not None and len(operands) == 1:
                sub = current.subcommands.get(arg)
                if sub is None:
                    parsed.problems.append(_unknown_subcommand(program, arg, current))
                    return parsed
                parsed.subcommand = arg
                current = sub
                table = {**table, **sub.table()}
                operands = []
                inv.positionals.append(arg)
                continue
            if not current.permute:
                only_operands = True
            continue
        result: str | int
        if arg.startswith("+"):
            if not (current.plus_options or top.plus_options):
                operands.append(arg)
                continue
            result = _cluster(arg, table, args, index, inv, plus=True, spec=top)
        elif arg == "--":
            only_operands = True
            continue
        elif current.negative_numbers and _is_negative_number(arg):
            operands.append(arg)
            continue
        elif (current.count_option or top.count_option) and re.fullmatch(r"-[0-9]{1,7}", arg):
            inv.options.append(Option("-NUM", arg[1:]))
            continue
        elif arg.startswith("--") or current.single_dash_long or top.single_dash_long:
            problem, index = _long(arg, table, args, index, inv)
            if problem:
                parsed.problems.append(f"{program} {arg}: {problem}")
            continue
        else:
            result = _cluster(arg, table, args, index, inv, plus=False, spec=top)
        if isinstance(result, str):
            parsed.problems.append(f"{program} {arg}: {result}")
        else:
            index = result
    inv.positionals.extend(operands)
    if current.subcommands is not None and not parsed.subcommand and not current.bare_ok:
        parsed.problems.append(f"{program}: name a subcommand")
    _check_operands(program, operands, current, parsed)
    return parsed


def _unknown_subcommand(program: str, word: str, current: Spec) -> str:
    known = sorted(current.subcommands or {})
    longer = [k for k in known if k.startswith(word)]
    if longer:
        return f"{program} {word}: an abbreviation; write {longer[0]!r} in full"
    return f"{program} {word}: not a known read-only subcommand"


def _check_operands(program: str, operands: list[str], current: Spec, parsed: Parsed) -> None:
    if current.operand is None and operands:
        parsed.problems.append(
            f"{program}: takes no operands here, got {operands[0]!r}"
            + (f" ({current.note})" if current.note else "")
        )
        return
    if current.max_operands is not None and len(operands) > current.max_operands:
        parsed.problems.append(
            f"{program}: at most {current.max_operands} operand(s)"
            + (f" ({current.note})" if current.note else "")
        )
    if len(operands) < current.min_operands:
        parsed.problems.append(f"{program}: needs {current.min_operands} operand(s)")
    if current.operand is not None:
        for operand in operands:
            why = current.operand.problem(operand)
            if why:
                parsed.problems.append(f"{program} operand {why}")
                break


def _long(
    arg: str, table: dict[str, Opt], args: list[str], index: int, inv: Invocation
) -> tuple[str | None, int]:
    name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
    opt = table.get(name)
    if opt is None:
        opt_exact = table.get(arg)
        if opt_exact is not None and opt_exact.value is None:  # a single-dash word with `=`
            inv.options.append(Option(arg))
            return None, index
        longer = sorted(k for k in table if len(name) > 1 and k.startswith(name) and k != name)
        if longer:
            return (
                f"not an allowed option (abbreviations are refused: if you meant {longer[0]}, "
                "write it in full)",
                index,
            )
        return "not an allowed option", index
    if opt.value is None:
        if eq:
            return "takes no value", index
        inv.options.append(Option(name))
        return None, index
    if not eq:
        if opt.optional:
            inv.options.append(Option(name))
            return None, index
        if index >= len(args):
            return "needs a value", index
        value = args[index]
        index += 1
    why = opt.value.problem(value)
    if why:
        return why, index
    inv.options.append(Option(name, value))
    return None, index


def _cluster(
    arg: str,
    table: dict[str, Opt],
    args: list[str],
    index: int,
    inv: Invocation,
    *,
    plus: bool,
    spec: Spec,
) -> str | int:
    """A short-option cluster (`-tlnp`, `-n5`, `+L1`); the next index, or the problem."""
    prefix = arg[0]
    letters = arg[1:]
    for position, letter in enumerate(letters):
        name = prefix + letter
        opt = table.get(name)
        if opt is None:
            return f"{name} is not an allowed option"
        if opt.value is None:
            inv.options.append(Option(name))
            continue
        rest = letters[position + 1 :]
        if not rest:
            separate = bool(
                spec.separate_optional
                and index < len(args)
                and re.fullmatch(spec.separate_optional, args[index])
            )
            if opt.optional and not separate:
                inv.options.append(Option(name))
                return index
            if opt.optional:
                rest = args[index]
                index += 1
            elif index >= len(args):
                return f"{name} needs a value"
            else:
                rest = args[index]
                index += 1
        why = opt.value.problem(rest)
        if why:
            return f"{name} {why}"
        inv.options.append(Option(name, rest))
        return index
    if plus and not letters:
        return "an empty `+` option"
    return index
