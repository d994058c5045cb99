"""Cross-cutting checks, run by Bolt before any listener (in this order).

1. `attach_services`: puts the shared `BotServices` in the request context.
2. `drop_duplicates`: each event handled once (event id; mention seen as two events).
3. `ignore_bots`: messages from bots (ourselves included) and message edits are acked, not handled.
4. `check_channel`: only allowlisted channels (commands and buttons here; events after the ack,
   where a channel name can be looked up without delaying it); a refusal says why, nothing is
   enqueued.
5. `check_user`: only allowlisted users start investigations or follow-ups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.middleware.allowlist import check_channel, check_user
from bot.middleware.context import attach_services
from bot.middleware.dedupe import drop_duplicates, ignore_bots

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import BotServices


def register(app: App, services: BotServices) -> None:
    app.use(attach_services(services))
    app.use(drop_duplicates)
    app.use(ignore_bots)
    app.use(check_channel)
    app.use(check_user)
