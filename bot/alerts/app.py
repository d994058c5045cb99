"""The webhook receiver as an ASGI app (Starlette): bearer token, body limits, rate limit.

`alerts_route(...)` answers `POST /alerts` (add it to the bot's HTTP app's routes);
`standalone_app(...)` is that route plus `GET /healthz`, for `bpfsleuth alerts`.
Status codes: 200 with the outcome as JSON, 400 unreadable JSON, 401 missing or wrong token,
413 body too large, 415 not JSON, 422 not a version-4 payload or nothing to act on, 429
rate-limited (with Retry-After), 503 not configured, Redis/Slack away, or another notification
of the group still being handled (with Retry-After; Alertmanager retries a 5xx). A refused
notification changes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.alerts.models import WebhookPayload
from bot.alerts.service import AlertError, AlertOutcome, GroupBusy, RateLimited
from bot.settings import AlertSettings

log = logging.getLogger(__name__)

Handler = Callable[[WebhookPayload], AlertOutcome]
RateCheck = Callable[[str], None]


class _TooLarge(Exception):
    pass


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _authorised(request: Request, settings: AlertSettings) -> bool:
    if settings.token is None:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), expected)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"not an Alertmanager version 4 payload: {where}: {first['msg']}"


def alerts_route(
    settings: AlertSettings, handler: Handler, rate_check: RateCheck, path: str = "/alerts"
) -> Route:
    """`POST <path>`: add it to the routes of any Starlette app (a Route, not a Mount: a Mount
    would redirect `POST /alerts` to `/alerts/`)."""

    async def receive(request: Request) -> JSONResponse:
        if settings.token is None:
            return _error(503, "the receiver has no BPFSLEUTH_ALERT_TOKEN set; it refuses all")
        if not _authorised(request, settings):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type.lower():
            return _error(415, f"expected application/json, got {content_type[:80]}")
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _TooLarge:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        try:
            payload = WebhookPayload.model_validate(data)
        except ValidationError as exc:
            return _error(422, _validation_message(exc))
        try:
            await run_in_threadpool(rate_check, payload.group_key)
            outcome = await run_in_threadpool(handler, payload)
        except RateLimited as exc:
            return _error(429, str(exc), **{"Retry-After": str(exc.retry_after_s)})
        except GroupBusy as exc:
            return _error(503, str(exc), **{"Retry-After": str(exc.retry_after_s)})
        except AlertError as exc:
            return _error(422, str(exc))
        except Exception as exc:  # Redis or Slack away: Alertmanager retries a 5xx
            log.exception("alert notification failed")
            return _error(503, f"cannot handle it now: {type(exc).__name__}")
        log.info("alert group %s: %s", outcome.group, outcome.action)
        return JSONResponse(outcome.model_dump(mode="json"))

    return Route(path, receive, methods=["POST"])


def standalone_app(settings: AlertSettings, handler: Handler, rate_check: RateCheck) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            alerts_route(settings, handler, rate_check),
        ]
    )
