"""`bpfsleuth bot`: build the app, start the progress consumer, serve until interrupted.

HTTP mode can serve from several processes (`--workers N`, N > 1): the main process forks N
HTTP workers before it builds anything (no threads or sockets yet); they bind the same port with
SO_REUSEPORT and the kernel spreads connections among them. The main process then only renders
progress to Slack, so rendering never competes with acks for a process's GIL. With one worker
(the default) the one process does both, the rendering deferring to requests in flight. The
progress consumer also holds a Redis lease, so two bots do not post twice; the workers end when
the main process does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading

from bot.app import build_app
from bot.progress import ProgressConsumer
from bot.settings import BotSettings
from worker.loop.approver_redis import ApprovalSettings

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        log.warning("cannot tie this worker process to its parent; stop it with its parent")


def _fork_workers(count: int) -> list[int]:
    """Fork `count` HTTP worker processes; returns their pids (in the parent)."""
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            _die_with_parent()
            return []
        children.append(pid)
    return children


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop


def run_bot(*, http: bool, bind: str = "0.0.0.0", port: int = 3000, workers: int = 1) -> None:  # noqa: S104
    settings = BotSettings()
    children: list[int] = []
    is_main = True
    if http and workers > 1:
        children = _fork_workers(workers)
        is_main = bool(children)
    stop = _wait_for_signal()
    app, services = build_app(settings, http=http)
    services.gateway.warm_up()
    # The approval buttons say how long the host waits (the same setting the host workers read).
    approval_wait_s = ApprovalSettings().wait_s
    consumer = ProgressConsumer(services, approval_timeout_s=approval_wait_s) if is_main else None
    if consumer is not None:
        consumer.start()
    try:
        if http and is_main and children:
            log.info("rendering progress for %s HTTP workers", len(children))
            stop.wait()
        elif http:
            from bot.server import BotHttpServer

            server = BotHttpServer(
                app, bind, port, in_flight=services.in_flight, reuse_port=workers > 1
            )
            server.start_in_thread()
            log.info(
                "listening on http://%s:%s/slack/events (pid %s)", bind, server.port, os.getpid()
            )
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
        if consumer is not None:
            consumer.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            except ProcessLookupError:
                pass
