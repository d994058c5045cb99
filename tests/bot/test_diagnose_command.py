"""`/diagnose` text into a command model, with errors a person can act on."""

from __future__ import annotations

import pytest

from bot.chat.diagnose_command import (
    CommandError,
    HandoffCommand,
    HelpCommand,
    HostsCommand,
    InvestigateCommand,
    parse_diagnose,
)

LIVE = ["web-1", "web-2", "db-1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", HelpCommand()),
        ("  HELP ", HelpCommand()),
        ("hosts", HostsCommand()),
        ("handoff", HandoffCommand()),
    ],
)
def test_keywords(text: str, expected: object) -> None:
    assert parse_diagnose(text, LIVE) == expected


@pytest.mark.parametrize(
    ("text", "hosts", "symptom"),
    [
        ("web-1,web-2 app randomly fails", ["web-1", "web-2"], "app randomly fails"),
        ("[web-1,db-1] slow queries", ["web-1", "db-1"], "slow queries"),
        ("[db-1]  slow   queries", ["db-1"], "slow queries"),
        ("web-1 app randomly fails to connect", ["web-1"], "app randomly fails to connect"),
        ("app randomly fails to connect", [], "app randomly fails to connect"),
        ("the help page is slow", [], "the help page is slow"),
    ],
)
def test_hosts_and_symptom(text: str, hosts: list[str], symptom: str) -> None:
    assert parse_diagnose(text, LIVE) == InvestigateCommand(hosts=hosts, symptom=symptom)


def test_a_first_word_that_is_not_a_live_host_is_part_of_the_symptom() -> None:
    parsed = parse_diagnose("nginx returns 502", LIVE)
    assert parsed == InvestigateCommand(hosts=[], symptom="nginx returns 502")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Say what is wrong"),
        ("   ", "Say what is wrong"),
        ("web-1,web-2", "Say what is wrong after the hosts"),
        ("web-1,web-9 slow", "No live host named `web-9`"),
        ("web-1,web-1 slow", "named twice"),
        ("web-1,bad$host slow", "not a list of host names"),
        (",, slow", "not a list of host names"),
        ("help me", "`help` takes nothing after it"),
        ("hosts web-1", "`hosts` takes nothing after it"),
        ("ab", "too short"),
        ("x" * 2001, "keep it under 2000"),
    ],
)
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_diagnose(text, LIVE)
    assert message in str(info.value)


def test_unknown_host_error_lists_the_live_hosts() -> None:
    with pytest.raises(CommandError) as info:
        parse_diagnose("web-1,web-9 slow", LIVE)
    assert "db-1, web-1, web-2" in str(info.value)


def test_explicit_hosts_are_accepted_when_the_live_list_is_unknown() -> None:
    parsed = parse_diagnose("web-7,web-8 slow disk", [])
    assert parsed == InvestigateCommand(hosts=["web-7", "web-8"], symptom="slow disk")


def test_too_many_hosts() -> None:
    names = [f"h{i}" for i in range(17)]
    with pytest.raises(CommandError, match="At most 16 hosts"):
        parse_diagnose(",".join(names) + " slow", [])
