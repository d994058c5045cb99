"""Drop repeated deliveries and bot-authored messages before any listener sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext, BoltResponse

from bot.middleware.request_facts import facts
from bot.services import services_of
from bot.store.dedupe import event_keys, first_time

# Message subtypes that are not someone asking something.
_IGNORED_SUBTYPES = {
    "bot_message",
    "message_changed",
    "message_deleted",
    "message_replied",
    "channel_join",
    "channel_leave",
    "thread_broadcast",
}


def _acked() -> BoltResponse:
    return BoltResponse(status=200, body="")


def drop_duplicates(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse:
    """An event id seen before, or a message already handled via its other event, is acked."""
    seen = facts(body)
    if seen.kind != "event":
        return next()
    services = services_of(context)
    bot_user = context.bot_user_id or ""
    mentions_bot = bool(bot_user) and f"<@{bot_user}>" in seen.text
    keys = event_keys(
        seen.event_id,
        seen.channel_id if mentions_bot else None,
        seen.ts if mentions_bot else None,
    )
    ttl = services.settings.dedupe_ttl_s
    for key in keys:
        if not first_time(services.redis, key, ttl):
            context.logger.info("duplicate delivery %s dropped", key)
            return _acked()
    return next()


def ignore_bots(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse:
    seen = facts(body)
    if seen.kind == "event" and (
        seen.from_bot
        or seen.subtype in _IGNORED_SUBTYPES
        or (seen.user_id is not None and seen.user_id == context.bot_user_id)
    ):
        return _acked()
    return next()
