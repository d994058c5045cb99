"""The sed and awk parsers against the real programs, and the getopt-faithful option parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from worker.policy.scripts import awk_program_finding, awk_tokens, sed_script_finding
from worker.policy.spec import parse_with_spec, spec

SED = shutil.which("sed")
AWK = shutil.which("awk")

SED_FRAGMENTS = [
    "p",
    "d",
    "s/a/b/",
    "s/a/b/g",
    "s|x|y|2",
    "s/[/]/x/",
    "s/a/b/w OUT",
    "s/.*/id/e",
    "w OUT",
    "W OUT",
    "e id",
    "r /etc/hostname",
    ":x",
    "b x",
    "t x",
    "y/ab/cd/",
    "1",
    "$",
    "/a/",
    "1,3",
    "0,/b/",
    "!",
    "{",
    "}",
    ";",
    " ",
    "# comment",
    "=",
    "l 5",
    "q",
    "N",
    "h;G",
    "\\,a,",
    "s/a/\\/b/",
]


@pytest.mark.skipif(SED is None, reason="GNU sed is not installed")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(SED_FRAGMENTS), min_size=1, max_size=6),
    separator=st.sampled_from(["", ";", " ; ", "\n"]),
)
def test_a_sed_script_the_policy_allows_is_one_gnu_sed_runs_in_sandbox_mode(
    pieces: list[str], separator: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """GNU sed --sandbox refuses e, r and w: anything we allow must pass it and write nothing."""
    work = tmp_path_factory.mktemp("sed")
    out = work / "out"
    script = separator.join(pieces).replace("OUT", str(out))
    finding = sed_script_finding(script)
    event(finding.verdict if finding else "allow")
    if finding is not None:
        return
    (work / "in").write_text("a/b\nab\nx\n")
    assert SED is not None
    result = subprocess.run(
        [SED, "-n", "--sandbox", "-e", script, str(work / "in")],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    assert "sandbox" not in result.stderr, (script, result.stderr)
    assert result.returncode == 0, (script, result.stderr)
    assert not out.exists()


@pytest.mark.parametrize(
    ("script", "verdict"),
    [
        ("p", None),
        ("s/a/b/g;p", None),
        (":x;t x e id", "needs_approval"),  # the label ends at `;`: then `t x e id`...
        ("b x w /tmp/f", "needs_approval"),
        ("p;w /tmp/f", "deny"),
        ("s/a/b/;e id", "deny"),
        ("s/a/b/e", "deny"),
        ("s/a/b/ w /tmp/f", "deny"),  # GNU: `w` as a flag after a blank? it is an error: deny
        ("p # w /tmp/f", None),  # a comment
        ("1!!p", "deny"),
        ("y/abc/xyz/", None),
        ("s/[/]/x/", "needs_approval"),
        ("s/a/b/x", "deny"),
    ],
)
def test_sed_boundaries(script: str, verdict: str | None) -> None:
    finding = sed_script_finding(script)
    assert (finding.verdict if finding else None) == verdict, finding


@pytest.mark.parametrize(
    ("program", "kinds"),
    [
        ("a / 2 / 1", ["name", "op", "number", "op", "number"]),
        ("x ~ /a\\/b/", ["name", "op", "regex"]),
        ("(1) / 2", ["op", "number", "op", "op", "number"]),
        ("a[1] / 2", ["name", "op", "number", "op", "op", "number"]),
        ("print /x/", ["name", "regex"]),
        ("2 ^ /x/", ["number", "op", "regex"]),
        ('"#" # c', ["string"]),
        ("/[/]x/", None),  # refused as ambiguous
    ],
)
def test_awk_lexer_reads_slash_as_awk_does(program: str, kinds: list[str] | None) -> None:
    if kinds is None:
        assert awk_program_finding(program) is not None
        return
    assert [token.kind for token in awk_tokens(program)] == kinds


@pytest.mark.skipif(AWK is None, reason="awk is not installed")
@pytest.mark.parametrize(
    "program",
    [
        '{ if ($1) print; else /#/; print "x" }',
        "BEGIN { a = 4 / 2 / 1; print a }",
        '{ print $1 } # print > "/tmp/x"',
        "BEGIN { print 6 / 3 }",
        "{ n = NF / 2 } END { print n }",
    ],
)
def test_awk_programs_we_allow_run_in_awk_and_write_nothing(program: str, tmp_path: Path) -> None:
    assert awk_program_finding(program) is None
    (tmp_path / "in").write_text("a b\n")
    assert AWK is not None
    result = subprocess.run(
        [AWK, program, str(tmp_path / "in")],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


FREE = spec(
    "-bhkm --bytes --human; -s --seconds =NUM(0.1..10); -c --count =INT(1..10); "
    "-n --nofile ?=INT(0..5); --color ?={never,auto}",
    "PATH*",
    count_option=True,
)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["-hb"], None),
        (["-s1", "-c", "3"], None),
        (["-hs", "2"], None),  # the value takes the rest of the cluster or the next word
        (["--seconds", "2", "--count=3"], None),
        (["--sec=2"], "abbreviation"),
        (["--human=yes"], "takes no value"),
        (["-n"], None),
        (["-n3"], None),
        (["-n", "3"], None),  # optional value not glued: `3` is an operand (a path here)
        (["--nofile=9"], "above"),
        (["--color=auto"], None),
        (["--color=au"], "abbreviation"),
        (["-x"], "not an allowed option"),
        (["-hx"], "-x is not an allowed option"),
        (["file", "-h"], None),  # GNU permutation
        (["--", "-h"], None),  # after `--`: an operand (and `-h` is a path that starts with -)
        (["-5"], None),  # count option
        (["-c"], "needs a value"),
    ],
)
def test_the_option_parser_reads_like_getopt(args: list[str], problem: str | None) -> None:
    parsed = parse_with_spec("free", args, FREE)
    problems = [p for p in parsed.problems if "operand" not in p]
    if problem is None:
        assert not problems, problems
    else:
        assert problems and problem in problems[0], problems
