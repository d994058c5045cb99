"""What listeners and the progress consumer share: settings, Redis, Slack client, worker door."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from bot.gateway import WorkerGateway
from bot.settings import BotSettings
from bot.threads import ThreadDirectory
from bot.views.models import HostRow

if TYPE_CHECKING:
    from slack_sdk import WebClient

CONTEXT_KEY = "bpfsleuth"
STATE_TTL_S = 7 * 24 * 3600
_CACHE_S = 60.0
HOSTS_CACHE_S = 2.0


class InFlight:
    """How many Slack requests this process is answering right now (HTTP mode).

    The progress consumer waits (briefly) while requests are in flight: an ack has a 3-second
    deadline, a thread update does not."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def __enter__(self) -> InFlight:
        with self._lock:
            self._count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


@dataclass
class BotServices:
    settings: BotSettings
    redis: redis.Redis
    gateway: WorkerGateway
    threads: ThreadDirectory
    client: WebClient
    _channel_names: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    _groups: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _hosts: tuple[float, list[HostRow]] | None = None
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="bot-bg")
    )
    in_flight: InFlight = field(default_factory=lambda: InFlight())

    def live_hosts(self, *, fresh: bool = False) -> list[HostRow]:
        """Live hosts, read at most every HOSTS_CACHE_S (heartbeats are seconds apart anyway;
        the worker checks again when the investigation starts)."""
        cached = self._hosts
        if not fresh and cached and time.monotonic() - cached[0] < HOSTS_CACHE_S:
            return cached[1]
        hosts = self.gateway.live_hosts()
        self._hosts = (time.monotonic(), hosts)
        return hosts

    @classmethod
    def create(cls, settings: BotSettings, client: WebClient) -> BotServices:
        from worker.distributed.store import connect

        conn = connect(settings.redis_url)
        return cls(
            settings=settings,
            redis=conn,
            gateway=WorkerGateway(settings.redis_url),
            threads=ThreadDirectory(conn, STATE_TTL_S),
            client=client,
        )

    def channel_name(self, channel_id: str) -> str | None:
        """The channel's name (conversations.info, cached for a minute); None if unknown."""
        cached = self._channel_names.get(channel_id)
        if cached and time.monotonic() - cached[0] < _CACHE_S:
            return cached[1]
        from slack_sdk.errors import SlackApiError

        name: str | None
        try:
            info: Any = self.client.conversations_info(channel=channel_id)
            name = str(info["channel"]["name"])
        except SlackApiError:
            name = None
        self._channel_names[channel_id] = (time.monotonic(), name)
        return name

    def is_responder(self, user_id: str) -> bool:
        """Listed by ID, or a member of a listed user group (usergroups.users.list, cached)."""
        if user_id in self.settings.responder_users:
            return True
        return any(user_id in self._group_members(g) for g in self.settings.responder_groups)

    def _group_members(self, group_id: str) -> frozenset[str]:
        cached = self._groups.get(group_id)
        if cached and time.monotonic() - cached[0] < _CACHE_S:
            return cached[1]
        from slack_sdk.errors import SlackApiError

        try:
            reply: Any = self.client.usergroups_users_list(usergroup=group_id)
            members = frozenset(str(u) for u in reply.get("users") or [])
        except SlackApiError:
            members = frozenset()
        self._groups[group_id] = (time.monotonic(), members)
        return members


_LIVE: dict[str, BotServices] = {}


def enlist(services: BotServices) -> str:
    """Make `services` findable by a short key (Bolt deep-copies the context for lazy
    listeners, and services hold locks and sockets, so the context carries only the key)."""
    key = f"services-{id(services)}"
    _LIVE[key] = services
    return key


def services_of(context: Any) -> BotServices:
    """The services whose key a middleware put into Bolt's request context."""
    return _LIVE[str(context[CONTEXT_KEY])]
