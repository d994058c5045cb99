"""HTTP mode: Bolt behind a small threaded WSGI server (one thread per request).

Bolt's own `app.start()` serves one request at a time; Slack sends retries and bursts, and the
3-second ack budget is per request, so requests must not queue behind each other.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.app import EVENTS_PATH
from bot.services import InFlight

if TYPE_CHECKING:
    from slack_bolt import App

log = logging.getLogger(__name__)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


class _SharedPortWSGIServer(_ThreadingWSGIServer):
    """Several processes listen on one port (SO_REUSEPORT); the kernel spreads connections."""

    allow_reuse_port = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class BotHttpServer:
    """Serves `POST /slack/events` (commands, events and interactions) on host:port."""

    def __init__(
        self, app: App, host: str, port: int, *, in_flight: InFlight, reuse_port: bool = False
    ) -> None:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        handler = SlackRequestHandler(app, path=EVENTS_PATH)

        def counted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with in_flight:
                return handler(environ, start_response)

        self._server = make_server(
            host,
            port,
            counted,
            server_class=_SharedPortWSGIServer if reuse_port else _ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="bot-http", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
