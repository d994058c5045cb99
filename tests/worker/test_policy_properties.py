"""Properties of the policy that must hold for any text a model can write."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from worker.policy import evaluate
from worker.policy.programs import PROGRAMS

SHELL_METACHARACTERS = [";", "&", "&&", "||", "|&", ">", ">>", "<", "$", "`", "(", ")", "{", "}"]
# Plain words without quotes or backslashes: every character is outside quotes.
PLAIN_WORD = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_./:,=+%@"),
    min_size=1,
    max_size=12,
)
ALLOWED_BASES = ["uptime", "ps aux", "df -h", "ss -tlnp", "cat /proc/meminfo", "ip -br a"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(ALLOWED_BASES),
    words=st.lists(PLAIN_WORD, max_size=4),
    metachar=st.sampled_from(SHELL_METACHARACTERS),
    position=st.integers(min_value=0, max_value=200),
)
@example(base="uptime", words=["x"], metachar=";", position=6)
def test_unquoted_shell_metacharacter_is_never_allowed(
    base: str, words: list[str], metachar: str, position: int
) -> None:
    text = " ".join([base, *words])
    cut = position % (len(text) + 1)
    command = text[:cut] + metachar + text[cut:]
    assert evaluate(command).verdict != "allow", command


@settings(max_examples=300)
@given(
    base=st.sampled_from(ALLOWED_BASES),
    control=st.sampled_from(["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85", "\u200b", "\u00a0"]),
    position=st.integers(min_value=0, max_value=100),
)
def test_control_and_invisible_characters_are_denied_anywhere(
    base: str, control: str, position: int
) -> None:
    cut = position % (len(base) + 1)
    command = base[:cut] + control + base[cut:]
    assert evaluate(command).verdict == "deny", repr(command)


@settings(max_examples=500)
@given(st.text(max_size=200))
def test_any_text_gets_a_verdict_and_a_reason_without_raising(command: str) -> None:
    decision = evaluate(command)
    assert decision.verdict in {"allow", "needs_approval", "deny"}
    assert decision.reason


@settings(max_examples=300)
@given(
    denied=st.sampled_from(["rm", "dd", "sh", "bash", "curl", "sudo", "kill", "python3", "env"]),
    prefix=st.sampled_from(["", "/bin/", "/usr/bin/", "/usr/local/bin/", "./", "/tmp/", "../"]),
    args=st.lists(PLAIN_WORD, max_size=3),
    upstream=st.booleans(),
)
def test_denied_programs_stay_denied_under_any_path_or_pipeline_position(
    denied: str, prefix: str, args: list[str], upstream: bool
) -> None:
    stage = " ".join([prefix + denied, *args])
    command = f"ps aux | {stage}" if upstream else stage
    assert evaluate(command).verdict == "deny", command


@settings(max_examples=300)
@given(
    program=st.sampled_from(["rm", "curl", "sh"]),
    split=st.integers(min_value=0, max_value=3),
    quote=st.sampled_from(["''", '""', "\\"]),
)
def test_quoting_inside_a_program_name_is_denied(program: str, split: int, quote: str) -> None:
    cut = split % (len(program) + 1)
    written = program[:cut] + quote + program[cut:] if quote != "\\" else "\\" + program
    assert evaluate(f"{written} -x").verdict == "deny", written


OPTION_LIKE = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzAZ019-=+,:/.%@_'\\ "),
    min_size=1,
    max_size=14,
)


@settings(max_examples=500, deadline=None)
@given(
    program=st.sampled_from(sorted(PROGRAMS)),
    words=st.lists(OPTION_LIKE, max_size=6),
    pipe_to=st.sampled_from(["", " | sort", " | awk '{print $1}'", " | sed -n 1p", " | base64"]),
)
def test_every_allowed_program_with_random_arguments_gets_a_verdict(
    program: str, words: list[str], pipe_to: str
) -> None:
    command = " ".join([program, *words]) + pipe_to
    decision = evaluate(command, destinations="")
    assert decision.verdict in {"allow", "needs_approval", "deny"}
    assert decision.reason
    if pipe_to == " | base64":
        assert decision.verdict != "allow", command
