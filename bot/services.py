"""What listeners and the progress consumer share: settings, Redis, Slack client, worker door."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from cachetools import TTLCache, cachedmethod
from slack_sdk.errors import SlackApiError

from bot.gateway import WorkerGateway
from bot.settings import BotSettings
from bot.store.threads import ThreadDirectory
from worker.distributed.registry import HostRow
from worker.distributed.store import connect

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
    _channel_names: TTLCache[str, str | None] = field(
        default_factory=lambda: TTLCache(maxsize=1024, ttl=_CACHE_S)
    )
    _groups: TTLCache[str, frozenset[str]] = field(
        default_factory=lambda: TTLCache(maxsize=256, ttl=_CACHE_S)
    )
    _hosts: TTLCache[str, list[HostRow]] = field(
        default_factory=lambda: TTLCache(maxsize=1, ttl=HOSTS_CACHE_S)
    )
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="bot-bg")
    )
    in_flight: InFlight = field(default_factory=lambda: InFlight())

    def live_hosts(self, *, fresh: bool = False) -> list[HostRow]:
        """Live hosts, read at most every HOSTS_CACHE_S (heartbeats are seconds apart anyway;
        the worker checks again when the investigation starts)."""
        if not fresh:
            with self._cache_lock:
                cached = self._hosts.get("live")
            if cached:
                return cached
        hosts = self.gateway.live_hosts()
        with self._cache_lock:
            self._hosts["live"] = hosts
        return hosts

    @classmethod
    def create(cls, settings: BotSettings, client: WebClient) -> BotServices:
        conn = connect(settings.redis_url)
        return cls(
            settings=settings,
            redis=conn,
            gateway=WorkerGateway(settings.redis_url),
            threads=ThreadDirectory(conn, STATE_TTL_S),
            client=client,
        )

    @cachedmethod(lambda self: self._channel_names, lock=lambda self: self._cache_lock)
    def channel_name(self, channel_id: str) -> str | None:
        """The channel's name (conversations.info, cached for a minute); None if unknown."""
        try:
            info: Any = self.client.conversations_info(channel=channel_id)
            return str(info["channel"]["name"])
        except SlackApiError:
            return None

    def is_responder(self, user_id: str) -> bool:
        """Listed by ID, or a member of a listed user group (usergroups.users.list, cached)."""
        if user_id in self.settings.responder_users:
            return True
        return any(user_id in self._group_members(g) for g in self.settings.responder_groups)

    @cachedmethod(lambda self: self._groups, lock=lambda self: self._cache_lock)
    def _group_members(self, group_id: str) -> frozenset[str]:
        try:
            reply: Any = self.client.usergroups_users_list(usergroup=group_id)
            return frozenset(str(u) for u in reply.get("users") or [])
        except SlackApiError:
            return frozenset()


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
