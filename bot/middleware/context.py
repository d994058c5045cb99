"""Give every listener the shared services through Bolt's context."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import BoltContext, BoltResponse

from bot.services import CONTEXT_KEY, BotServices, enlist


def attach_services(services: BotServices) -> Callable[..., BoltResponse]:
    key = enlist(services)

    def attach_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context[CONTEXT_KEY] = key
        return next()

    return attach_services
