"""Every command the built-in flows and the offline planner issue is allowed unattended.

The commands are read from the sources themselves (YAML `run:` steps, and every `cmd(...)` call in
worker/backends/offline with its f-string holes filled with random plausible values), so a new
flow step or analyzer command the allowlist does not cover fails here, not on a host.
"""

from __future__ import annotations

import ast
import importlib
import random

import pytest
import yaml

from tests.support.paths import REPO
from worker.policy import evaluate

FLOWS = sorted((REPO / "worker" / "flows").glob("*.yaml"))
OFFLINE = sorted(
    [
        *(REPO / "worker" / "backends" / "offline").rglob("*.py"),
        *(REPO / "worker" / "analysis").rglob("*.py"),
    ]
)


def _flow_commands() -> list[str]:
    commands: list[str] = []
    for path in FLOWS:
        data = yaml.safe_load(path.read_text())
        for step in data.get("steps", []) if isinstance(data, dict) else []:
            if isinstance(step, dict) and "run" in step:
                commands.append(str(step["run"]))
    return commands


def _sample(expression: str, rng: random.Random) -> str:
    """A plausible value for an f-string hole, chosen by the variable's name."""
    if "pids" in expression:
        return ",".join(str(rng.randint(2, 4_000_000)) for _ in range(rng.randint(1, 4)))
    if "port" in expression:
        return str(rng.randint(1, 65535))
    if "server" in expression:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return str(rng.randint(2, 4_000_000))


def _render(node: ast.expr, module: str, rng: random.Random) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append(_sample(ast.unparse(value.value), rng))
        return "".join(parts)
    loaded = importlib.import_module(module)
    if isinstance(node, ast.Name):
        value = getattr(loaded, node.id)
        return value if isinstance(value, str) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        slice_name = f"/system.slice/app-{rng.randint(1, 999)}.service"
        result = getattr(loaded, node.func.id)(slice_name)
        return result if isinstance(result, str) else None
    return None


def _planner_commands(rng: random.Random) -> list[str]:
    commands: list[str] = []
    for path in OFFLINE:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "cmd"
                and len(node.args) >= 2
            ):
                rendered = _render(node.args[1], module, rng)
                assert rendered is not None, f"{path}: cannot render {ast.unparse(node.args[1])}"
                commands.append(rendered)
    return commands


def test_sources_were_found() -> None:
    assert len(_flow_commands()) >= 15
    assert len(_planner_commands(random.Random())) >= 8


@pytest.mark.parametrize("command", sorted(set(_flow_commands())))
def test_flow_commands_are_allowed(command: str) -> None:
    decision = evaluate(command, destinations="")
    assert decision.verdict == "allow", decision.reason


def test_planner_commands_are_allowed_with_random_values() -> None:
    rng = random.Random()
    for _ in range(20):
        for command in _planner_commands(rng):
            decision = evaluate(command, destinations="")
            assert decision.verdict == "allow", (command, decision.reason)
