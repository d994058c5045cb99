"""Split a command line into pipeline stages of words, the way a POSIX shell would, minus the shell.

Only plain words, single and double quotes, backslash escapes and the `|` pipe are understood.
Everything that would need a shell to mean what it says (redirections, `$` expansions, command
substitution, lists, subshells, brace expansion, comments, ...) is refused with a reason:
we never run a shell, so text that relies on one is either an evasion attempt or a mistake.
"""

from __future__ import annotations

import glob
import unicodedata
from dataclasses import dataclass, field

MAX_COMMAND_CHARS = 2000
MAX_STAGES = 8
GLOB_CHARS = frozenset("*?[")


class ShellSyntaxError(ValueError):
    """The command uses shell syntax we refuse; `str()` says which and why."""


@dataclass
class Word:
    """One argv element after quote removal, with what the quoting looked like."""

    text: str = ""
    pattern: str = ""  # the text as a glob pattern: quoted characters escaped
    quoted: bool = False  # any quote or backslash escape contributed to the word
    unquoted_prefix: str = ""  # the leading characters written without any quoting
    unquoted_glob: bool = False  # a `*`, `?` or `[` outside quotes (the shell would glob)
    unquoted_tilde: bool = False  # starts with an unquoted `~` (the shell would expand it)
    _prefix_open: bool = field(default=True, repr=False)

    def add(self, char: str, *, quoted: bool) -> None:
        if quoted:
            self.quoted = True
            self._prefix_open = False
        elif self._prefix_open:
            self.unquoted_prefix += char
        self.text += char
        self.pattern += glob.escape(char) if quoted else char


_OPERATOR_REASONS = {
    ";": "`;` (command list) needs a shell",
    "&": "`&`/`&&` (background or and-list) needs a shell",
    "<": ("redirection (`<`, `<<`, `<<<`, `<(...)`) needs a shell; pass the file as an argument"),
    ">": (
        "redirection (`>`, `>>`, `>|`, `2>&1`, `>(...)`) needs a shell and writes files; "
        "stderr is captured separately, so drop `2>/dev/null` and `2>&1`"
    ),
    "(": "subshell or process substitution needs a shell",
    ")": "subshell or process substitution needs a shell",
    "`": "command substitution (backticks) runs another command",
    "$": "`$` expansion (variables, `$IFS`, `${...}`, `$(...)`, `$'...'`) needs a shell",
    "{": "brace expansion or command grouping needs a shell",
    "}": "brace expansion or command grouping needs a shell",
}


def check_characters(command: str) -> None:
    """Refuse control characters anywhere and invisible or spacing look-alike characters."""
    if len(command) > MAX_COMMAND_CHARS:
        raise ShellSyntaxError(f"command longer than {MAX_COMMAND_CHARS} characters")
    for index, char in enumerate(command):
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:
            label = {0: "NUL", 9: "tab", 10: "newline", 13: "carriage return"}.get(
                code, f"U+{code:04X}"
            )
            raise ShellSyntaxError(
                f"control character ({label}) at position {index}: one command per request, "
                "written on one line"
            )
        if code > 0x7F:
            category = unicodedata.category(char)
            if category in {"Cf", "Zs", "Zl", "Zp", "Co", "Cn", "Cs"}:
                raise ShellSyntaxError(
                    f"invisible or look-alike character U+{code:04X} "
                    f"({unicodedata.name(char, 'unnamed')}) at position {index}"
                )


def split_pipeline(command: str) -> list[list[Word]]:
    """The pipeline's stages, each a non-empty list of words; `ShellSyntaxError` otherwise."""
    check_characters(command)
    if not command.strip():
        raise ShellSyntaxError("empty command")
    stages: list[list[Word]] = [[]]
    word: Word | None = None
    index = 0
    length = len(command)

    def finish_word() -> None:
        nonlocal word
        if word is not None:
            stages[-1].append(word)
            word = None

    while index < length:
        char = command[index]
        nxt = command[index + 1] if index + 1 < length else ""
        if char == " ":
            finish_word()
            index += 1
            continue
        if char == "|":
            if nxt == "|":
                raise ShellSyntaxError("`||` (or-list) needs a shell")
            if nxt == "&":
                raise ShellSyntaxError("`|&` (pipe with stderr) needs a shell")
            finish_word()
            if not stages[-1]:
                raise ShellSyntaxError("empty pipeline stage around `|`")
            stages.append([])
            if len(stages) > MAX_STAGES:
                raise ShellSyntaxError(f"more than {MAX_STAGES} pipeline stages")
            index += 1
            continue
        if char in _OPERATOR_REASONS:
            raise ShellSyntaxError(_OPERATOR_REASONS[char])
        if word is None:
            word = Word()
            if char == "#":
                raise ShellSyntaxError("`#` starts a shell comment; remove it")
            if char == "~":
                word.unquoted_tilde = True
        if char == "'":
            end = command.find("'", index + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated single quote")
            word.quoted = True
            word._prefix_open = False
            for quoted_char in command[index + 1 : end]:
                word.add(quoted_char, quoted=True)
            index = end + 1
            continue
        if char == '"':
            index = _read_double_quoted(command, index + 1, word)
            continue
        if char == "\\":
            if not nxt:
                raise ShellSyntaxError("trailing backslash")
            word.add(nxt, quoted=True)
            index += 2
            continue
        if char in GLOB_CHARS:
            word.unquoted_glob = True
        word.add(char, quoted=False)
        index += 1
    finish_word()
    if not stages[-1]:
        raise ShellSyntaxError("empty pipeline stage around `|`")
    return stages


def _read_double_quoted(command: str, index: int, word: Word) -> int:
    """Consume a double-quoted section starting after its opening quote; return the next index."""
    word.quoted = True
    word._prefix_open = False
    length = len(command)
    while index < length:
        char = command[index]
        if char == '"':
            return index + 1
        if char in "$`":
            raise ShellSyntaxError(
                f"`{char}` inside double quotes expands (variables or command substitution); "
                "use single quotes"
            )
        if char == "\\" and index + 1 < length and command[index + 1] in '"\\$`':
            word.add(command[index + 1], quoted=True)
            index += 2
            continue
        word.add(char, quoted=True)
        index += 1
    raise ShellSyntaxError("unterminated double quote")
