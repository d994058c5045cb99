"""Checks for the little programs that `sed` and `awk` take as an argument.

Both languages can write files and run commands (`sed` `w`/`e`, `awk` `system()`, `print > f`,
`"cmd" | getline`); as pipeline filters they may only read their input and print.
"""

from __future__ import annotations

import re

from worker.policy.invocation import Finding, approval, deny

_SED_SIMPLE = set("pdDnNPhHgGxzF=lLqQ")


class _SedScanner:
    def __init__(self, script: str) -> None:
        self.text = script
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def until_delimiter(self, delimiter: str) -> bool:
        """Consume up to and including an unescaped `delimiter`; False when it never comes."""
        while self.pos < len(self.text):
            char = self.take()
            if char == "\\":
                self.take()
            elif char == delimiter:
                return True
        return False

    def address(self) -> bool:
        char = self.peek()
        if char.isdigit():
            self.skip("0123456789")
            if self.peek() == "~":
                self.take()
                self.skip("0123456789")
        elif char == "$":
            self.take()
        elif char == "/":
            self.take()
            if not self.until_delimiter("/"):
                return False
            self.skip("IM")
        elif char == "\\":
            self.take()
            delimiter = self.take()
            if not delimiter or not self.until_delimiter(delimiter):
                return False
            self.skip("IM")
        elif char in "+~":
            self.take()
            self.skip("0123456789")
        return True


def sed_script_finding(script: str) -> Finding | None:
    """None when the script only selects, substitutes and prints; else why not."""
    scan = _SedScanner(script)
    while True:
        scan.skip(" ;")
        if not scan.peek():
            return None
        if not scan.address():
            return approval(f"sed script {script!r}: unterminated address")
        if scan.peek() == ",":
            scan.take()
            if not scan.address():
                return approval(f"sed script {script!r}: unterminated address")
        scan.skip(" ")
        if scan.peek() == "!":
            scan.take()
            scan.skip(" ")
        command = scan.take()
        if command in "{}" and command:
            continue
        if command in _SED_SIMPLE:
            scan.skip(" 0123456789")
            continue
        if command in ":btT":
            while scan.peek() and scan.peek() not in ";}":
                scan.take()
            continue
        if command in "aic":
            return None  # the rest of the one-liner is text to print
        if command in "sy":
            delimiter = scan.take()
            if not delimiter or delimiter in "\\ ":
                return approval(f"sed script {script!r}: unusual `{command}` delimiter")
            if not (scan.until_delimiter(delimiter) and scan.until_delimiter(delimiter)):
                return approval(f"sed script {script!r}: unterminated `{command}` command")
            flags = ""
            while scan.peek() and scan.peek() not in ";} ":
                flags += scan.take()
            if command == "s":
                if "w" in flags or "W" in flags:
                    return deny(f"sed `s///w` writes a file ({script!r})")
                if "e" in flags:
                    return deny(f"sed `s///e` executes the pattern space as a command ({script!r})")
                if flags.strip("gpiImM0123456789"):
                    return approval(f"sed script {script!r}: unknown `s` flags {flags!r}")
            continue
        if command in "wW":
            return deny(f"sed `{command}` writes a file ({script!r})")
        if command == "e":
            return deny(f"sed `e` executes a command ({script!r})")
        if command in "rR":
            return approval(f"sed `{command}` reads another file into the output ({script!r})")
        return approval(f"sed script {script!r}: cannot verify command {command!r}")


_AWK_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_AWK_REGEX_CONTEXT = set("(,{};!~&|?:=+-*%<>[") | {""}


def _strip_awk_literals(program: str) -> str | None:
    """The program with string and regex literals emptied; None if a literal never ends."""
    out: list[str] = []
    index = 0
    last_significant = ""
    while index < len(program):
        char = program[index]
        if char == '"':
            match = _AWK_STRING.match(program, index)
            if not match:
                return None
            out.append('""')
            index = match.end()
            last_significant = '"'
            continue
        if char == "/" and last_significant in _AWK_REGEX_CONTEXT:
            end = index + 1
            in_bracket = False
            while end < len(program):
                c = program[end]
                if c == "\\":
                    end += 2
                    continue
                if c == "[":
                    in_bracket = True
                elif c == "]":
                    in_bracket = False
                elif c == "/" and not in_bracket:
                    break
                end += 1
            if end >= len(program):
                return None
            out.append("//")
            index = end + 1
            last_significant = "/"
            continue
        if char == "#":  # comment to end of line (there are no newlines: to the end)
            break
        out.append(char)
        if not char.isspace():
            last_significant = char
            # keywords after which a `/` can only start a regex (elsewhere, when in doubt, a
            # `/` is division so that the text after it stays visible to the checks below)
            tail = "".join(out).rstrip()
            if re.search(r"\b(?:print|printf|return)$", tail):
                last_significant = ""
        index += 1
    return "".join(out)


def _print_statement_redirects(code: str) -> bool:
    """True when a print/printf statement has a `>` outside parentheses (output redirection)."""
    for match in re.finditer(r"\bprintf?\b", code):
        depth = 0
        for char in code[match.end() :]:
            if char in "([":
                depth += 1
            elif char in ")]":
                if depth == 0:
                    break
                depth -= 1
            elif char in ";}" and depth == 0:
                break
            elif char == ">" and depth == 0:
                return True
    return False


def awk_program_finding(program: str) -> Finding | None:
    """None when the awk program only reads its input and prints to stdout; else why not."""
    code = _strip_awk_literals(program)
    if code is None:
        return approval(f"awk program {program!r}: unterminated string or regex")
    if re.search(r"\bsystem\b", code):
        return deny("awk `system()` runs a shell command")
    if "|" in code.replace("||", ""):
        return deny('awk pipes (`print | "cmd"`, `"cmd" | getline`, `|&`) run commands')
    if "@" in code:
        return deny("gawk `@load`/`@include`/indirect calls load or run other code")
    if _print_statement_redirects(code):
        return deny("awk output redirection (`print > file`) writes a file")
    if re.search(r"\bgetline\b[^;{}]*<", code):
        return approval("awk `getline < file` reads another file")
    return None
