"""`bpfsleuth bot`: build the app, start the progress consumer, serve until interrupted.

HTTP mode: the main process forks one child before it builds anything (no threads or sockets
yet); the child runs gunicorn (bot.serve.server), whose arbiter forks `workers` HTTP processes that
each build their own Bolt app. The main process only renders progress to Slack, so rendering
never competes with acks for a process's GIL. The progress consumer also holds a Redis lease,
so two bots do not post twice. The server child dies with the main process (PDEATHSIG) and the
main process ends when the server does (a worker that cannot boot stops the arbiter).
Socket Mode: one process does both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from bot.app import build_app, check_settings
from bot.progress.consumer import ProgressConsumer
from bot.serve.server import GRACEFUL_TIMEOUT_S, BotHttpServer
from bot.settings import BotSettings
from probes.engine.lifetime import die_with_parent
from worker.settings import ApprovalSettings

if TYPE_CHECKING:
    from slack_bolt import App

log = logging.getLogger(__name__)


class BotServerError(RuntimeError):
    """The HTTP server (gunicorn) ended by itself: a worker could not boot, or the port is
    taken."""


def _die_with_parent() -> None:
    if not die_with_parent(signal.SIGTERM):
        log.warning("cannot tie this worker process to its parent; stop it with its parent")


def _fork_server(settings: BotSettings, bind: str, port: int, workers: int, threads: int) -> int:
    """Fork the HTTP server (gunicorn's arbiter); returns its pid in the parent, never returns
    in the child."""
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        _die_with_parent()

        def build() -> App:
            app, services = build_app(settings, http=True)
            services.gateway.warm_up()
            return app

        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        BotHttpServer(build, bind, port, workers=workers, threads=threads, log_level=level).run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("the HTTP server failed")
    finally:
        os._exit(code)


def _watch(pid: int, stop: threading.Event, ended: list[int]) -> None:
    """Set `stop` when the server child ends; its exit status goes into `ended`."""

    def wait() -> None:
        _, status = os.waitpid(pid, 0)
        ended.append(os.waitstatus_to_exitcode(status))
        stop.set()

    threading.Thread(target=wait, name="bot-http-watch", daemon=True).start()


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop


def run_bot(
    *,
    http: bool,
    bind: str = "0.0.0.0",  # noqa: S104
    port: int = 3000,
    workers: int = 1,
    threads: int = 8,
) -> None:
    """Serve until SIGTERM/SIGINT; raises BotServerError if the HTTP server ends by itself."""
    settings = BotSettings()
    check_settings(settings, http=http)
    server_pid = _fork_server(settings, bind, port, workers, threads) if http else None
    stop = _wait_for_signal()
    ended: list[int] = []
    if server_pid is not None:
        _watch(server_pid, stop, ended)
    consumer: ProgressConsumer | None = None
    try:
        app, services = build_app(settings, http=http)
        services.gateway.warm_up()
        # The approval buttons say how long the host waits (the setting the host workers read).
        approval_wait_s = ApprovalSettings().wait_s
        consumer = ProgressConsumer(services, approval_timeout_s=approval_wait_s)
        consumer.start()
        if server_pid is not None:
            log.info("rendering progress; HTTP server pid %s, %s worker(s)", server_pid, workers)
            stop.wait()
            if ended:
                raise BotServerError(f"the HTTP server ended (exit status {ended[0]}); see above")
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
        if consumer is not None:
            consumer.stop()
        if server_pid is not None and not ended:
            _stop_server(server_pid, ended)


def _stop_server(pid: int, ended: list[int]) -> None:
    """SIGTERM (gunicorn finishes the requests in flight), then SIGKILL after its grace."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACEFUL_TIMEOUT_S + 5
    while not ended and time.monotonic() < deadline:
        time.sleep(0.05)
    if not ended:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
