"""The app manifest asks for what the bot uses: the command, the events, and every scope the
Web API methods it calls require (per Slack's published spec)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from bot.listeners.commands import COMMAND
from tests.support.fakes.slack_api import SPEC_PATH
from tests.support.paths import REPO

MANIFEST = REPO / "bot" / "manifest.yaml"
# Every Web API method the bot calls (bot/**/*.py), and the scope for the three the spec lacks.
METHODS = [
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "conversations.info",
    "usergroups.users.list",
]
NEWER_METHODS = {
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return data


def _spec_scopes(method: str) -> list[str]:
    spec = json.loads(SPEC_PATH.read_text())
    scopes: list[str] = []
    for operation in spec["paths"][f"/{method}"].values():
        for requirement in operation.get("security", []):
            scopes += requirement.get("slackAuth", [])
    return scopes


def test_the_manifest_declares_the_command_events_interactivity_and_socket_mode() -> None:
    manifest = _manifest()
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [COMMAND]
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.channels",
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_every_method_the_bot_calls_is_covered_by_a_scope() -> None:
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    for method in METHODS:
        needed = _spec_scopes(method)
        assert needed, method
        if needed == ["none"]:
            continue
        ok = any(s in granted or s.rsplit(":", 1)[0] in granted for s in needed)
        assert ok, f"{method} needs one of {needed}; the manifest grants {sorted(granted)}"
    for method, scope in NEWER_METHODS.items():
        assert scope in granted, method


def test_the_bot_code_calls_no_method_the_manifest_test_does_not_know() -> None:
    """Keeps METHODS honest: every client.<method>( call in bot/ is listed above."""
    import re

    known = {m.replace(".", "_") for m in METHODS} | {"files_upload_v2"}
    source = "\n".join(p.read_text() for p in MANIFEST.parent.rglob("*.py"))
    called = set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", source))
    assert called, "no Web API calls found"
    assert "files_upload_v2" in called and "chat_update" in called
    assert called <= known, called - known
