"""`bpfsleuth bot`: build the app, start the progress consumer, serve until interrupted."""

from __future__ import annotations

import logging
import signal
import threading

from bot.app import build_app
from bot.progress import ProgressConsumer
from bot.settings import BotSettings

log = logging.getLogger(__name__)


def run_bot(*, http: bool, bind: str = "0.0.0.0", port: int = 3000) -> None:  # noqa: S104
    settings = BotSettings()
    app, services = build_app(settings, http=http)
    services.gateway.warm_up()
    consumer = ProgressConsumer(services)
    consumer.start()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if http:
            from bot.server import BotHttpServer

            server = BotHttpServer(app, bind, port)
            server.start_in_thread()
            log.info("listening on http://%s:%s/slack/events", bind, server.port)
            stop.wait()
            server.shutdown()
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.app_token is not None
            handler = SocketModeHandler(
                app, settings.app_token.get_secret_value(), web_client=services.client
            )
            handler.connect()  # type: ignore[no-untyped-call]
            log.info("connected to Slack in Socket Mode")
            stop.wait()
            handler.close()  # type: ignore[no-untyped-call]
    finally:
        consumer.stop()
