"""Slack Web API calls counted (`worker.metrics`): by method and HTTP status, 429s, latency."""

from __future__ import annotations

import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.slack_response import SlackResponse

from worker import metrics


class MeteredWebClient(WebClient):
    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        started = time.monotonic()
        try:
            response = super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            status = int(getattr(exc.response, "status_code", 0) or 0)
            metrics.slack_call(api_method, status, time.monotonic() - started)
            raise
        except Exception:  # connection errors: no status
            metrics.slack_call(api_method, 0, time.monotonic() - started)
            raise
        metrics.slack_call(api_method, response.status_code, time.monotonic() - started)
        return response


class CountedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits out Retry-After), counting every 429 it sees."""

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            metrics.slack_rate_limited(request.url.rstrip("/").rsplit("/", 1)[-1])
        return super().can_retry(state=state, request=request, response=response, error=error)
