"""The few facts the checks need, read from any kind of Slack request body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RequestFacts(BaseModel):
    kind: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    user_id: str | None = None
    command_text: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    ts: str | None = None
    text: str = ""
    from_bot: bool = False
    subtype: str | None = None


def facts(body: dict[str, Any]) -> RequestFacts:
    if "command" in body:
        return RequestFacts(
            kind="command",
            channel_id=body.get("channel_id"),
            channel_name=body.get("channel_name"),
            user_id=body.get("user_id"),
            command_text=body.get("text") or "",
        )
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        return RequestFacts(
            kind="event",
            channel_id=event.get("channel"),
            user_id=event.get("user"),
            event_type=event.get("type"),
            event_id=body.get("event_id"),
            ts=event.get("ts"),
            text=event.get("text") or "",
            from_bot=bool(event.get("bot_id") or event.get("bot_profile")),
            subtype=event.get("subtype"),
        )
    if body.get("type") in {"block_actions", "interactive_message", "view_submission"}:
        channel = body.get("channel") or {}
        container = body.get("container") or {}
        return RequestFacts(
            kind="action",
            channel_id=channel.get("id") or container.get("channel_id"),
            channel_name=channel.get("name"),
            user_id=(body.get("user") or {}).get("id"),
        )
    return RequestFacts(kind=str(body.get("type") or ""))
