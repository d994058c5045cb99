"""The Bolt app: middleware, listeners, and the two ways to run it (Socket Mode, HTTP)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from bot.listeners import register_listeners
from bot.middleware import register as register_middleware
from bot.services import BotServices
from bot.settings import BotSettings
from bot.slack_api.client import build_web_client

if TYPE_CHECKING:
    from slack_bolt import App

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


class BotConfigError(RuntimeError):
    """A setting the chosen mode needs is missing; the message says which and how to set it."""


def check_settings(settings: BotSettings, *, http: bool) -> None:
    if settings.bot_token is None:
        raise BotConfigError("SLACK_BOT_TOKEN is not set (xoxb-..., from OAuth & Permissions)")
    if http and settings.signing_secret is None:
        raise BotConfigError(
            "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information > App Credentials)"
        )
    if not http and settings.app_token is None:
        raise BotConfigError(
            "Socket Mode needs SLACK_APP_TOKEN (xapp-..., Basic Information > App-Level Tokens, "
            "scope connections:write); or run `bpfsleuth bot --http` with SLACK_SIGNING_SECRET"
        )


def build_app(
    settings: BotSettings, *, http: bool, services: BotServices | None = None
) -> tuple[App, BotServices]:
    """A Bolt app wired to our middleware and listeners; calls auth.test once."""
    from slack_bolt import App

    check_settings(settings, http=http)
    client = services.client if services else build_web_client(settings)
    services = services or BotServices.create(settings, client)
    secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
    app = App(
        client=client,
        signing_secret=secret,
        request_verification_enabled=http,
        process_before_response=True,
        token_verification_enabled=True,
        ignoring_self_events_enabled=True,
        raise_error_for_unhandled_request=False,
        listener_executor=ThreadPoolExecutor(max_workers=16, thread_name_prefix="bolt"),
        logger=logging.getLogger("bot.bolt"),
    )
    register_middleware(app, services)
    register_listeners(app)
    return app, services
