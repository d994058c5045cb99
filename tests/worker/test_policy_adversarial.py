"""The adversarial suite (tests/worker/data/adversarial_policy.yaml): every command, its verdict."""

from __future__ import annotations

import pytest

from tests.support.paths import REPO
from tests.worker.adversarial_summary import load_suite
from worker.policy import evaluate
from worker.policy.allowlist import SPECS
from worker.policy.programs import PROGRAMS, REMOVED

GROUPS = load_suite()
CASES = [
    pytest.param(group.destinations, command, group.verdict, id=f"{group.klass[:30]}: {command}")
    for group in GROUPS
    for command in group.commands
]


def test_the_suite_is_large_and_covers_every_verdict() -> None:
    commands = [command for group in GROUPS for command in group.commands]
    assert len(commands) >= 400
    assert len(set(commands)) == len(commands), "a command appears twice"
    assert {group.verdict for group in GROUPS} == {"allow", "needs_approval", "deny"}


@pytest.mark.parametrize(("destinations", "command", "verdict"), CASES)
def test_adversarial_verdict(destinations: str, command: str, verdict: str) -> None:
    decision = evaluate(command, destinations=destinations)
    assert decision.verdict == verdict, decision.reason
    assert decision.reason


def test_every_allowed_program_has_an_allowlist_or_always_needs_approval() -> None:
    assert set(SPECS) <= set(PROGRAMS)
    for name, rule in PROGRAMS.items():
        assert rule.spec is not None or rule.approval_only, name


def test_docs_name_every_removed_program() -> None:
    docs = (REPO / "docs" / "policy.md").read_text()
    missing = [name for name in REMOVED if f"`{name}`" not in docs]
    assert not missing, f"docs/policy.md does not say why these were removed: {missing}"
