"""The Web API client: Slack's base URL from settings, 429 `Retry-After` honoured on every call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import BotSettings
from bot.slack_api.metrics import CountedRateLimitRetryHandler, MeteredWebClient

if TYPE_CHECKING:
    from slack_sdk import WebClient


def build_web_client(settings: BotSettings, *, token: str | None = None) -> WebClient:
    """A WebClient on `SLACK_API_URL` that waits out rate limits (up to N retries per call).

    slack_sdk's RateLimitErrorRetryHandler sleeps for the `Retry-After` Slack sends with a 429,
    then sends the same call again; connection errors are retried once.
    """
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    bot_token = token or (settings.bot_token.get_secret_value() if settings.bot_token else None)
    return MeteredWebClient(
        token=bot_token,
        base_url=settings.api_url,
        timeout=15,
        retry_handlers=[
            CountedRateLimitRetryHandler(max_retry_count=settings.slack_max_retries),
            ConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )
