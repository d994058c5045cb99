"""Parsers for the little programs `sed` and `awk` take as an argument, and the pure subset allowed.

Both languages can write files and run commands (`sed` `w`/`e`/`s///e`, `awk` `system()`,
`print > f`, `"cmd" | getline`). A scan for bad words is not enough: the checker and the real
program must agree where each command, string, regex and comment starts and ends. So both are
tokenised the way GNU sed and awk (gawk/mawk) read them, and only a pure subset is allowed:

- sed: addresses (`N`, `$`, `/re/`, `\\cREc`, `first~step`, `addr,+N`, `0,/re/`, `!`), blocks
  `{ }` and the commands `p d D n N P h H g G x l = q Q z F s y`, `s` flags only `g p I i M m`
  and a number. Labels and branches (`: b t T`), `a i c`, `r R v` need approval; `e`, `w`, `W`
  and `s///e`, `s///w` are denied. Text that does not parse is denied with the reason.
- awk: patterns and actions that compute and `print`/`printf` to stdout. `system()`, pipes,
  output redirection and `@` (load, include, indirect calls) are denied; `getline`, `close`,
  `fflush`, `ARGV`/`ARGC`/`ENVIRON`/`PROCINFO`, `while`/`do`/`for(;;)` loops and user functions
  need approval. A `/` is a regex or a division exactly as awk's grammar decides.

A `/` inside a bracket expression (`[/]`) is where implementations have disagreed: such a regex
is refused and the reason says to write `\\/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from worker.policy.invocation import Finding, approval, deny
from worker.policy.spec import words

# == sed ======================================================================================

_SED_PLAIN = set("=dDgGhHnNpPxzF")
_SED_NUMBERED = set("lLqQ")


class _Unparseable(ValueError):
    pass


class _Ambiguous(ValueError):
    """Parses, but implementations may disagree where a part ends: a human should look."""


@dataclass
class SedReport:
    finding: Finding | None
    transliterates: bool = False


def _delimited(text: str, pos: int, delimiter: str, *, regex: bool) -> int:
    """Index just after the unescaped `delimiter` closing the part starting at `pos`."""
    plain = _scan(text, pos, delimiter, brackets=False)
    if not regex:
        return plain
    aware = _scan(text, pos, delimiter, brackets=True)
    if plain != aware:
        raise _Ambiguous(
            f"a {delimiter!r} inside a bracket expression is read differently by "
            f"implementations; write it as \\{delimiter}"
        )
    return plain


def _scan(text: str, pos: int, delimiter: str, *, brackets: bool) -> int:
    in_bracket = False
    while pos < len(text):
        char = text[pos]
        if char == "\n":
            raise _Unparseable("a newline inside a regex or replacement")
        if char == "\\" and not in_bracket:
            pos += 2
            continue
        if brackets and not in_bracket and char == "[":
            in_bracket = True
            pos += 1
            if text[pos : pos + 1] == "^":
                pos += 1
            if text[pos : pos + 1] == "]":
                pos += 1
            continue
        if in_bracket:
            if char == "[" and text[pos + 1 : pos + 2] in {":", ".", "="}:
                close = text.find(text[pos + 1] + "]", pos + 2)
                if close < 0:
                    raise _Unparseable("an unterminated [: :] class")
                pos = close + 2
                continue
            if char == "]":
                in_bracket = False
            pos += 1
            continue
        if char == delimiter:
            return pos + 1
        pos += 1
    raise _Unparseable(f"unterminated (no closing {delimiter!r})")


class _SedParser:
    def __init__(self, script: str) -> None:
        self.text = script
        self.pos = 0
        self.transliterates = False
        self.outside: str = ""  # the first construct outside the subset (approval)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_blanks(self) -> None:
        while self.peek() in {" ", "\t"} and self.peek():
            self.pos += 1

    def number(self) -> None:
        while self.peek().isdigit():
            self.pos += 1

    def address(self, second: bool) -> bool:
        char = self.peek()
        if char.isdigit():
            self.number()
            if self.peek() == "~":
                self.pos += 1
                self.number()
            return True
        if char == "$":
            self.pos += 1
            return True
        if second and char in "+~":
            self.pos += 1
            if not self.peek().isdigit():
                raise _Unparseable(f"`{char}` needs a number")
            self.number()
            return True
        if char in {"/", "\\"}:
            if char == "\\":
                self.pos += 1
                char = self.peek()
                if char in {"", "\n", "\\"}:
                    raise _Unparseable("a bad regex delimiter")
            self.pos = _delimited(self.text, self.pos + 1, char, regex=True)
            while self.peek() in {"I", "M"} and self.peek():
                self.pos += 1
            return True
        return False

    def end_of_command(self) -> None:
        self.skip_blanks()
        char = self.peek()
        if char in {"", ";", "\n", "}", "#"}:
            return
        raise _Unparseable(f"extra characters after a command at {self.pos}: {char!r}")

    def parse(self) -> None:
        depth = 0
        while True:
            while self.peek() in {" ", "\t", ";", "\n"} and self.peek():
                self.pos += 1
            char = self.peek()
            if not char:
                break
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
                continue
            has_address = self.address(second=False)
            if has_address:
                self.skip_blanks()
                if self.peek() == ",":
                    self.pos += 1
                    self.skip_blanks()
                    if not self.address(second=True):
                        raise _Unparseable("a `,` without a second address")
            self.skip_blanks()
            if self.peek() == "!":
                self.pos += 1
                self.skip_blanks()
                if self.peek() == "!":
                    raise _Unparseable("multiple `!`s")
            command = self.peek()
            self.pos += 1
            if command == "{":
                depth += 1
                continue
            if command == "}":
                if has_address:
                    raise _Unparseable("`}` does not take an address")
                depth -= 1
                if depth < 0:
                    raise _Unparseable("an unexpected `}`")
                self.end_of_command()
                continue
            if command in _SED_PLAIN:
                self.end_of_command()
                continue
            if command in _SED_NUMBERED:
                self.skip_blanks()
                self.number()
                self.end_of_command()
                continue
            if command in {"s", "y"}:
                self.substitution(command)
                continue
            if command in {"w", "W"}:
                raise _Denied(f"sed `{command}` writes a file")
            if command == "e":
                raise _Denied("sed `e` executes a command")
            if command in {":", "b", "t", "T"}:
                self.note(f"labels and branches (`{command}`) are outside the allowed subset")
                return
            if command in {"a", "i", "c"}:
                self.note(f"`{command}` (text insertion) is outside the allowed subset")
                return
            if command in {"r", "R"}:
                self.note(f"sed `{command}` reads another file into the output")
                return
            if command == "v":
                self.note("`v` is outside the allowed subset")
                return
            raise _Unparseable(f"unknown command {command!r}" if command else "a missing command")
        if depth:
            raise _Unparseable("an unmatched `{`")

    def note(self, why: str) -> None:
        self.outside = self.outside or why

    def substitution(self, command: str) -> None:
        delimiter = self.peek()
        if delimiter in {"", "\n", "\\"}:
            raise _Unparseable(f"a bad `{command}` delimiter")
        self.pos = _delimited(self.text, self.pos + 1, delimiter, regex=command == "s")
        self.pos = _delimited(self.text, self.pos, delimiter, regex=False)
        if command == "y":
            self.transliterates = True
            self.end_of_command()
            return
        while True:
            flag = self.peek()
            if flag in {"g", "p", "i", "I", "m", "M"} and flag:
                self.pos += 1
            elif flag.isdigit() and flag:
                self.number()
            elif flag == "e":
                raise _Denied("sed `s///e` executes the pattern space as a command")
            elif flag in {"w", "W"} and flag:
                raise _Denied("sed `s///w` writes a file")
            else:
                break
        self.end_of_command()


class _Denied(ValueError):
    pass


@lru_cache(maxsize=256)
def sed_report(script: str) -> SedReport:
    """Parse a sed script (several `-e` scripts joined with newlines, as GNU sed joins them)."""
    parser = _SedParser(script)
    try:
        parser.parse()
    except _Denied as exc:
        return SedReport(deny(f"{exc} ({script!r})"))
    except _Unparseable as exc:
        return SedReport(deny(f"sed script {script!r} does not parse: {exc}"))
    except _Ambiguous as exc:
        return SedReport(approval(f"sed script {script!r}: {exc}"))
    if parser.outside:
        return SedReport(approval(f"sed script {script!r}: {parser.outside}"))
    return SedReport(None, parser.transliterates)


def sed_script_finding(script: str) -> Finding | None:
    return sed_report(script).finding


def sed_transliterates(script: str) -> bool:
    """Does the script use `y///` (a character mapping that defeats redaction)?"""
    return sed_report(script).transliterates


# == awk ======================================================================================

# After these a `/` starts a regex; after any other name it divides. Where awk itself would
# reject the text either way (`in /`, `delete /`, `getline /`), we read a division, so that
# what follows stays visible to the checks.
_AWK_KEYWORDS_BEFORE_REGEX = frozenset({"print", "printf", "return", "else", "do", "case"})
_AWK_DENIED_NAMES = {"system": "awk `system()` runs a shell command"}
_AWK_APPROVAL_NAMES = {
    "getline": "awk `getline` reads another file or command",
    "close": "awk `close()` acts on files and commands",
    "fflush": "awk `fflush()` acts on files and commands",
    "ARGV": "awk `ARGV` changes which files are read",
    "ARGC": "awk `ARGC` changes which files are read",
    "ENVIRON": "awk `ENVIRON` reads the environment",
    "PROCINFO": "gawk `PROCINFO` reads process details",
    "while": "awk `while`/`do` loops are outside the allowed subset (they can run unbounded)",
    "do": "awk `while`/`do` loops are outside the allowed subset (they can run unbounded)",
    "function": "awk user functions are outside the allowed subset",
    "func": "awk user functions are outside the allowed subset",
}
_AWK_OPERATORS = sorted(
    words(
        "**= ** ++ -- += -= *= /= %= ^= == <= >= != && || >> !~ |& + - * / % ^ ! > < | ? : ~ $ = "
        "( ) [ ] { } , ;"
    ),
    key=len,
    reverse=True,
)
_AWK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AWK_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)")


@dataclass(frozen=True)
class Token:
    kind: str  # name, number, string, regex, op, newline
    text: str


def awk_tokens(program: str) -> list[Token]:
    """awk's tokens; `_Unparseable` when a string or regex never ends or a character is foreign."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(program):
        char = program[pos]
        if char in " \t":
            pos += 1
            continue
        if char == "\\" and program[pos + 1 : pos + 2] == "\n":
            pos += 2
            continue
        if char == "\n":
            tokens.append(Token("newline", "\n"))
            pos += 1
            continue
        if char == "#":
            end = program.find("\n", pos)
            pos = len(program) if end < 0 else end
            continue
        if char == '"':
            end = pos + 1
            while end < len(program) and program[end] != '"':
                if program[end] == "\n":
                    raise _Unparseable("a newline inside a string")
                end += 2 if program[end] == "\\" else 1
            if end >= len(program):
                raise _Unparseable("an unterminated string")
            tokens.append(Token("string", program[pos : end + 1]))
            pos = end + 1
            continue
        if char == "/" and _regex_allowed(tokens):
            end = _delimited(program, pos + 1, "/", regex=True)
            tokens.append(Token("regex", program[pos:end]))
            pos = end
            continue
        number = _AWK_NUMBER.match(program, pos)
        if number and (char.isdigit() or char == "."):
            tokens.append(Token("number", number.group()))
            pos = number.end()
            continue
        name = _AWK_NAME.match(program, pos)
        if name:
            tokens.append(Token("name", name.group()))
            pos = name.end()
            continue
        for operator in _AWK_OPERATORS:
            if program.startswith(operator, pos):
                tokens.append(Token("op", operator))
                pos += len(operator)
                break
        else:
            if char == "@":
                tokens.append(Token("op", "@"))
                pos += 1
                continue
            raise _Unparseable(f"an unexpected character {char!r}")
    return tokens


def _regex_allowed(tokens: list[Token]) -> bool:
    """A `/` starts a regex unless the previous token ends an operand (then it divides)."""
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind in {"number", "string", "regex"}:
        return False
    if last.kind == "name":
        return last.text in _AWK_KEYWORDS_BEFORE_REGEX
    return last.text not in {")", "]", "$", "++", "--"}


def awk_program_finding(program: str) -> Finding | None:
    """None when the awk program only reads its input and prints to stdout; else why not."""
    try:
        tokens = awk_tokens(program)
    except _Unparseable as exc:
        return deny(f"awk program {program!r} does not parse: {exc}")
    except _Ambiguous as exc:
        return approval(f"awk program {program!r}: {exc}")
    findings: list[Finding] = []
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    in_print = False
    print_depth = 0
    for index, token in enumerate(tokens):
        text = token.text
        if token.kind == "newline":
            in_print = False
        elif token.kind == "op":
            if text == "@":
                return deny("gawk `@load`/`@include`/indirect calls load or run other code")
            if text in {"|", "|&"}:
                return deny('awk pipes (`print | "cmd"`, `"cmd" | getline`, `|&`) run commands')
            if text in depth:
                depth[text] += 1
            elif text in closing:
                depth[closing[text]] -= 1
                if depth[closing[text]] < 0:
                    return deny(f"awk program {program!r} does not parse: unbalanced {text!r}")
            if in_print and text in {">", ">>"} and depth["("] + depth["["] == print_depth:
                return deny("awk output redirection (`print > file`) writes a file")
            if text in {";", "{", "}"}:
                in_print = False
        elif token.kind == "name":
            if text in _AWK_DENIED_NAMES:
                return deny(_AWK_DENIED_NAMES[text])
            if text in _AWK_APPROVAL_NAMES:
                findings.append(approval(_AWK_APPROVAL_NAMES[text]))
            if text in {"print", "printf"}:
                in_print = True
                print_depth = depth["("] + depth["["]
            if text == "for" and _infinite_for(tokens, index):
                findings.append(approval("awk `for (;;)` loops are outside the allowed subset"))
    if any(depth.values()):
        return deny(f"awk program {program!r} does not parse: unbalanced brackets")
    return findings[0] if findings else None


def _infinite_for(tokens: list[Token], index: int) -> bool:
    """`for (;;)` or `for (x;;y)`: a loop without a condition."""
    texts = [t.text for t in tokens[index + 1 : index + 12]]
    if texts[:1] != ["("]:
        return False
    try:
        first = texts.index(";")
    except ValueError:
        return False
    return texts[first + 1 : first + 2] == [";"]
