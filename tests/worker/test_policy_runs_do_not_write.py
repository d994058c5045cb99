"""Property: no command the policy allows, actually run, changes a watched tree.

Commands are generated from the allowlists themselves (worker/policy/allowlist.py): a program,
some of its options with values of the right kind, and operands that point into a temporary
tree (commands run with cwd `/`, so every path is absolute). Write attempts are mixed in:
output options aimed into the tree, awk and sed programs that write or run commands, option
names and clusters the allowlist does not know. Whatever the policy allows is run for real
through `run_command`; the tree (names, types, sizes, modes, mtimes, ctimes, contents) must be
exactly as before and hold no new file. Names and values are random on every run.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

from tests.support.ebpf import scaled
from worker.host.executor import run_command
from worker.policy import evaluate
from worker.policy.allowlist import SPECS
from worker.policy.spec import Kind, Opt
from worker.protocol import CommandRequest

# Programs that read files given as operands (their operands get tree paths).
FILE_READERS = [
    "cat",
    "head",
    "tail",
    "grep",
    "sort",
    "uniq",
    "wc",
    "cut",
    "ls",
    "du",
    "stat",
    "file",
    "md5sum",
    "sha256sum",
    "strings",
    "zcat",
    "gzip",
    "xz",
    "tr",
    "diff",
    "column",
    "readlink",
    "realpath",
    "tree",
    "lsattr",
    "find",
    "sed",
    "awk",
    "jq",
]
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=10).filter(
    lambda name: name not in {".", ".."} and not name.startswith("-")
)
WRITE_ATTEMPTS_AWK = [
    '{{ print > "{target}" }}',
    '{{ print >> "{target}" }}',
    '{{ printf "%s", $0 > "{target}" }}',
    'BEGIN {{ system("touch {target}") }}',
    'BEGIN {{ print "x" | "cat > {target}" }}',
    '{{ print $1 }} # {{ print > "{target}" }}',
    '{{ if ($1) print; else /#/; print > "{target}" }}',
    "{{ print $1 / 2 }}",
    "{{ n++ }} END {{ print n }}",
]
WRITE_ATTEMPTS_SED = [
    "w {target}",
    "s/a/b/w {target}",
    "1e touch {target}",
    "s/.*/touch {target}/e",
    ":x;t x w {target}",
    "p",
    "s/a/b/g",
    "/x/d",
    "$!N;P;D",
]
OPTION_LETTERS = "abcdefghijklmnopqrstuvwxyzCDEFIOSTWZ"
VALUE_SAMPLES = ["1", "3", "0", "x", "a,b", "-1", "10", "name", "%s", "+5", "pid,comm"]


def _tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    state: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            state[str(path.relative_to(root))] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                digest,
            )
    return state


def _value_for(kind: Kind, draw: st.DrawFn, paths: list[str]) -> str:
    if kind.words:
        return draw(st.sampled_from(sorted(kind.words)))
    if kind.low is not None and kind.high is not None:
        high = min(kind.high, kind.low + 20)
        if kind.integer:
            return str(draw(st.integers(int(kind.low), int(high))))
        return f"{draw(st.floats(kind.low, high, allow_nan=False)):.2f}"
    if kind.name == "path":
        return draw(st.sampled_from(paths))
    candidates = [*VALUE_SAMPLES, *paths]
    fitting = [value for value in candidates if kind.problem(value) is None]
    return draw(st.sampled_from(fitting or candidates))


def _option_words(opt: Opt, draw: st.DrawFn, paths: list[str]) -> list[str]:
    name = draw(st.sampled_from(opt.names))
    if opt.value is None:
        return [name]
    value = _value_for(opt.value, draw, paths)
    if opt.optional or name.startswith("--"):
        return [f"{name}={value}"] if name.startswith("--") else [name + value]
    return [name, value]


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'" if re.search(r"[^\w./:,=%+@-]", word) else word


@st.composite
def commands(draw: st.DrawFn, root: Path, files: list[str]) -> str:
    paths = [str(root / name) for name in files] + [str(root)]
    target = str(root / draw(NAME))
    program = draw(st.sampled_from(FILE_READERS))
    spec = SPECS[program]
    words: list[str] = [program]
    for opt in draw(st.lists(st.sampled_from(spec.opts), max_size=3)) if spec.opts else []:
        words += _option_words(opt, draw, paths)
    if draw(st.booleans()):  # an output option or an unknown cluster aimed at the tree
        words += draw(
            st.sampled_from(
                [
                    ["-o", target],
                    [f"--output={target}"],
                    ["-w", target],
                    [f"-S{target}"],
                    ["-i"],
                    ["--in-place"],
                    [f"--files0-from={target}"],
                    ["-" + draw(st.text(alphabet=OPTION_LETTERS, max_size=3))],
                ]
            )
        )
    if program == "awk":
        words.append(draw(st.sampled_from(WRITE_ATTEMPTS_AWK)).format(target=target))
    elif program == "sed":
        words.append(draw(st.sampled_from(WRITE_ATTEMPTS_SED)).format(target=target))
    elif program in {"grep", "tr", "jq"}:
        words.append(draw(st.sampled_from(["a", "x", ".", "[a-z]", " "])))
    words += draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3))
    command = " ".join(_quote(word) for word in words)
    if draw(st.booleans()):
        command += " | " + draw(st.sampled_from(["sort", "head -n 3", "wc -l", "uniq -c"]))
    return command


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    rng = os.urandom(8).hex()
    root = tmp_path / f"watched-{rng}"
    (root / "sub").mkdir(parents=True)
    names = [f"app-{rng[:4]}.log", f"conf-{rng[4:]}.txt", "sub/data.json", "empty"]
    for index, name in enumerate(names):
        (root / name).write_text(f'line a {index}\nline b x{index}\n{{"k": {index}}}\n')
    (root / "empty").write_text("")
    yield root, names


@settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_allowed_command_changes_the_watched_tree(
    tree: tuple[Path, list[str]], data: st.DataObject
) -> None:
    root, names = tree
    command = data.draw(commands(root, names))
    decision = evaluate(command, destinations="")
    event(decision.verdict)
    if decision.verdict != "allow":
        return
    before = _tree_state(root)
    result = run_command(CommandRequest(id="p", command=command), timeout_s=scaled(5))
    assert result.verdict == "allow"
    after = _tree_state(root)
    assert after == before, f"{command!r} changed the tree: {result.stderr[:200]}"


def test_the_generator_yields_allowed_commands_often_enough(tmp_path: Path) -> None:
    """The property above must not pass by refusing everything."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.log").write_text("a\n")
    allowed = 0
    strategy = commands(root, ["a.log"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for _ in range(200):
            if evaluate(strategy.example(), destinations="").verdict == "allow":
                allowed += 1
    assert allowed >= 30, allowed


def test_the_tree_state_sees_a_write_a_new_file_and_a_chmod(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    states = [_tree_state(tmp_path)]
    (tmp_path / "f").write_text("y")
    states.append(_tree_state(tmp_path))
    (tmp_path / "g").write_text("")
    states.append(_tree_state(tmp_path))
    (tmp_path / "f").chmod(0o600)
    states.append(_tree_state(tmp_path))
    assert all(a != b for a, b in itertools.pairwise(states))
