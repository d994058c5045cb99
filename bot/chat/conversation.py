"""Mentions of the bot: a follow-up in an investigation's thread, a handoff, or a pointer."""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.chat.handoff import post_handoff
from bot.gateway import GatewayError
from bot.middleware.allowlist import refusal_text
from bot.services import BotServices
from bot.views.help import error_message, notice_message

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def question_text(text: str) -> str:
    """The message without mentions of anyone, on one line."""
    return " ".join(_MENTION.sub(" ", text).split())


def handle_mention(services: BotServices, event: dict[str, Any]) -> None:
    """Act on a message that mentions the bot (called once per message, see the dedupe),
    after the ack: the channel allowlist is checked here (an event has no channel name)."""
    from slack_sdk.errors import SlackApiError

    channel = str(event.get("channel") or "")
    user = str(event.get("user") or "")
    thread_ts = event.get("thread_ts")
    question = question_text(str(event.get("text") or ""))
    try:
        if not services.settings.channel_allowed(channel, services.channel_name(channel)):
            refused = error_message(refusal_text(services))
            services.client.chat_postEphemeral(channel=channel, user=user, **refused.as_kwargs())
            return
        investigation_id = services.threads.by_thread(channel, thread_ts) if thread_ts else None
        if question.lower() == "handoff":
            post_handoff(services, channel_id=channel, requested_by=user, thread_ts=thread_ts)
            return
        if investigation_id is None:
            message = notice_message(
                "Start an investigation with `/diagnose [host,host] <symptom>`, then mention me "
                "in its thread to ask about it. `/diagnose help` shows more."
            )
            services.client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
            return
        if not question:
            return
        try:
            services.gateway.follow_up(investigation_id, question, asked_by=f"slack:{user}")
        except GatewayError as exc:
            failed = error_message(str(exc))
            services.client.chat_postEphemeral(channel=channel, user=user, **failed.as_kwargs())
            return
        services.threads.wake(investigation_id)
    except SlackApiError as exc:
        log.error("reply to a mention in %s failed: %s", channel, exc)
