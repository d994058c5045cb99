"""Channel and user allowlists. A refusal is an ephemeral reply; nothing is enqueued."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext, BoltResponse

from bot.middleware.request_facts import RequestFacts, facts
from bot.services import BotServices, services_of
from bot.views.help import error_message

# /diagnose forms anyone in an allowed channel may use.
_OPEN_COMMANDS = {"help", "hosts"}


def _ephemeral(text: str) -> BoltResponse:
    message = error_message(text)
    body = {"response_type": "ephemeral", **message.as_kwargs()}
    return BoltResponse(
        status=200, body=json.dumps(body), headers={"content-type": "application/json"}
    )


def _post_ephemeral(services: BotServices, seen: RequestFacts, text: str) -> None:
    """Tell the person in the channel (events and actions cannot answer in the HTTP reply)."""
    if not (seen.channel_id and seen.user_id):
        return
    from slack_sdk.errors import SlackApiError

    message = error_message(text)
    try:
        services.client.chat_postEphemeral(
            channel=seen.channel_id, user=seen.user_id, **message.as_kwargs()
        )
    except SlackApiError:
        return


def refusal_text(services: BotServices) -> str:
    allowed = ", ".join(f"`{p}`" for p in services.settings.channels)
    return (
        f"bpfsleuth is not enabled in this channel. Allowed channels: {allowed} "
        "(BPFSLEUTH_CHANNELS)."
    )


def check_channel(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse:
    """Commands and button presses carry the channel's name; events carry only its ID, and
    resolving it is a Web API call that must not delay the ack (a 429 would make Slack retry),
    so events are checked after the ack, where they are handled (bot.chat.conversation)."""
    seen = facts(body)
    if seen.kind not in {"command", "action"} or not seen.channel_id:
        return next()
    services = services_of(context)
    settings = services.settings
    if not settings.channels:
        return next()
    name = seen.channel_name
    if name in {"privategroup", "directmessage"}:
        name = None  # a private channel or a DM: matched by ID only (no Web API call here)
    if settings.channel_allowed(seen.channel_id, name):
        return next()
    text = refusal_text(services)
    context.logger.info("refused request from channel %s (%s)", seen.channel_id, name)
    if seen.kind == "command":
        return _ephemeral(text)
    _post_ephemeral(services, seen, text)
    return BoltResponse(status=200, body="")


def check_user(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse:
    seen = facts(body)
    services = services_of(context)
    if not services.settings.users or not seen.user_id:
        return next()
    if seen.kind == "command":
        first = (seen.command_text or "").strip().split(" ", 1)[0].lower()
        if first in _OPEN_COMMANDS:
            return next()
    elif seen.kind != "event" or seen.event_type not in {"app_mention", "message"}:
        return next()  # approvals have their own, stricter check (responders)
    if services.settings.user_allowed(seen.user_id):
        return next()
    text = "You are not on the list of people who can start investigations (BPFSLEUTH_USERS)."
    if seen.kind == "command":
        return _ephemeral(text)
    bot_user = context.bot_user_id or ""
    if seen.event_type == "app_mention" or (bot_user and f"<@{bot_user}>" in seen.text):
        _post_ephemeral(services, seen, text)
    return BoltResponse(status=200, body="")
