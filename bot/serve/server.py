"""HTTP mode: Bolt's WSGI adapter served by gunicorn (`gthread` workers).

gunicorn's arbiter owns the listening socket and forks `workers` processes; each builds its own
Bolt app after the fork (no Redis connection or thread crosses a fork) and answers requests from
a pool of `threads`. The arbiter restarts a worker that dies or hangs past `timeout`.

Why WSGI and not ASGI: every listener, our Redis and Celery calls and slack_sdk's WebClient are
synchronous; Bolt's ASGI adapter for a sync `App` calls it on the event loop (one request at a
time) and its `AsyncApp` would mean rewriting every listener for no gain in an I/O-light ack.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from bot.alerts.server import build_standalone
from bot.app import EVENTS_PATH
from bot.settings import AlertSettings

if TYPE_CHECKING:
    from slack_bolt import App

log = logging.getLogger(__name__)
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
# Slack acks must come within 3 s; a request still running after this is a hung worker.
WORKER_TIMEOUT_S = 30
GRACEFUL_TIMEOUT_S = 10


class BotHttpServer(BaseApplication):  # type: ignore[misc]
    """Serves `POST /slack/events` (commands, events and interactions) on bind:port.

    `build` makes the Bolt app; it runs once in each worker process, after the fork. Only these
    options apply: BaseApplication reads no gunicorn.conf.py and no GUNICORN_CMD_ARGS."""

    def __init__(
        self,
        build: Callable[[], App],
        bind: str,
        port: int,
        *,
        workers: int = 1,
        threads: int = 8,
        log_level: str = "info",
    ) -> None:
        self._build = build
        self._bind = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
        self._options: dict[str, Any] = {
            "bind": [self._bind],
            "workers": workers,
            # one thread: gunicorn's plain pre-fork worker, one request at a time per process
            "worker_class": "gthread" if threads > 1 else "sync",
            "threads": threads,
            "backlog": 1024,
            "timeout": WORKER_TIMEOUT_S,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": log_level.lower(),
            "proc_name": "bpfsleuth-bot",
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        handler: WsgiApp = SlackRequestHandler(self._build(), path=EVENTS_PATH)
        log.info("listening on http://%s%s (pid %s)", self._bind, EVENTS_PATH, os.getpid())
        alerts = _alerts_app()
        if alerts is None:
            return handler
        log.info("Alertmanager webhook on http://%s%s", self._bind, ALERTS_PATH)
        return _route(handler, alerts)

    def serve_forever(self) -> None:
        """Run the arbiter until SIGTERM/SIGINT (graceful: requests in flight finish)."""
        self.run()


ALERTS_PATH = "/alerts"


def _alerts_app() -> WsgiApp | None:
    """The Alertmanager receiver (bot/alerts, ASGI) as WSGI, when BPFSLEUTH_ALERT_TOKEN is set."""
    from a2wsgi import ASGIMiddleware

    if AlertSettings().token is None:
        return None
    app: WsgiApp = ASGIMiddleware(build_standalone())  # type: ignore[arg-type,assignment]
    return app


def _route(slack: WsgiApp, alerts: WsgiApp) -> WsgiApp:
    """`POST /alerts` to the alert receiver, everything else to Bolt."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == ALERTS_PATH:
            return alerts(environ, start_response)
        return slack(environ, start_response)

    return app
