"""Where each investigation lives in Slack: channel, root message, who asked. Kept in Redis.

Keys (under `bpfsleuth:slack:`, expiring with the investigation state):
- `inv:<id>`                 JSON `SlackThread`
- `thread:<channel>:<ts>`    the investigation whose root message is `ts` in `channel`
- `channel:<channel>`        sorted set of investigation ids by start time
- `active`                   set of investigations whose progress is still being rendered
- `wake`                     stream the listeners poke so the progress consumer looks at once
"""

from __future__ import annotations

import time
from typing import Any, cast

import redis
from pydantic import BaseModel, Field
from redis.lock import Lock

from worker.distributed.store import Store

PREFIX = "bpfsleuth:slack"
ACTIVE_KEY = f"{PREFIX}:active"
WAKE_STREAM = f"{PREFIX}:wake"


class SlackThread(BaseModel):
    investigation_id: str
    channel_id: str
    requested_by: str = ""
    symptom: str = ""
    hosts: list[str] = Field(default_factory=list)
    thread_ts: str | None = Field(default=None, description="The root message, once posted.")
    response_url: str | None = Field(
        default=None, description="The slash command's reply URL (works where we cannot post)."
    )
    started_at: float = Field(default_factory=time.time)


class ThreadDirectory:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    @staticmethod
    def _inv_key(investigation_id: str) -> str:
        return f"{PREFIX}:inv:{investigation_id}"

    @staticmethod
    def _thread_key(channel_id: str, ts: str) -> str:
        return f"{PREFIX}:thread:{channel_id}:{ts}"

    @staticmethod
    def _channel_key(channel_id: str) -> str:
        return f"{PREFIX}:channel:{channel_id}"

    def register(self, thread: SlackThread) -> None:
        """A new investigation started from Slack; the progress consumer will post its root."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(
                self._inv_key(thread.investigation_id), thread.model_dump_json(), ex=self.ttl_s
            )
            pipe.zadd(
                self._channel_key(thread.channel_id), {thread.investigation_id: thread.started_at}
            )
            pipe.expire(self._channel_key(thread.channel_id), self.ttl_s)
            pipe.sadd(ACTIVE_KEY, thread.investigation_id)
            pipe.xadd(WAKE_STREAM, {"investigation_id": thread.investigation_id}, maxlen=1000)
            pipe.execute()

    def wake(self, investigation_id: str) -> None:
        """Ask the consumer to look at this investigation now (a new step was enqueued)."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(ACTIVE_KEY, investigation_id)
            pipe.xadd(WAKE_STREAM, {"investigation_id": investigation_id}, maxlen=1000)
            pipe.execute()

    def set_root(self, investigation_id: str, thread_ts: str) -> SlackThread | None:
        thread = self.get(investigation_id)
        if thread is None:
            return None
        thread.thread_ts = thread_ts
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._inv_key(investigation_id), thread.model_dump_json(), ex=self.ttl_s)
            pipe.set(
                self._thread_key(thread.channel_id, thread_ts), investigation_id, ex=self.ttl_s
            )
            pipe.execute()
        return thread

    def get(self, investigation_id: str) -> SlackThread | None:
        raw = cast(str | None, self.client.get(self._inv_key(investigation_id)))
        return SlackThread.model_validate_json(raw) if raw else None

    def by_thread(self, channel_id: str, thread_ts: str) -> str | None:
        return cast(str | None, self.client.get(self._thread_key(channel_id, thread_ts)))

    def in_channel(self, channel_id: str, limit: int = 20) -> list[str]:
        """The channel's investigations, newest first."""
        return cast(list[str], self.client.zrevrange(self._channel_key(channel_id), 0, limit - 1))

    def running_in_channel(self, channel_id: str, limit: int = 100) -> list[str]:
        """The channel's investigations still being followed (started, not yet resolved)."""
        ids = self.in_channel(channel_id, limit)
        if not ids:
            return []
        flags = cast(list[int], self.client.smismember(ACTIVE_KEY, ids))
        return [i for i, flag in zip(ids, flags, strict=True) if flag]

    def last_progress_at(self, investigation_id: str) -> float:
        """Unix time of the investigation's latest progress event, or of its start."""
        newest = cast(
            list[Any], self.client.xrevrange(Store.progress_key(investigation_id), count=1)
        )
        if newest:
            return int(str(newest[0][0]).split("-")[0]) / 1000
        thread = self.get(investigation_id)
        return thread.started_at if thread else 0.0

    def prune_silent(self, ids: list[str], silent_for_s: float) -> list[str]:
        """Retire the investigations among `ids` with no progress for `silent_for_s` (their
        workers died, or their state expired); returns the ones still alive."""
        now = time.time()
        alive = []
        for investigation_id in ids:
            if now - self.last_progress_at(investigation_id) > silent_for_s:
                self.retire(investigation_id)
            else:
                alive.append(investigation_id)
        return alive

    def channel_lock(self, channel_id: str) -> Lock:
        """A short lock serialising starts in one channel (expires by itself if we die)."""
        return Lock(self.client, f"{PREFIX}:start-lock:{channel_id}", timeout=10)

    def active(self) -> set[str]:
        return cast(set[str], self.client.smembers(ACTIVE_KEY))

    def retire(self, investigation_id: str) -> None:
        self.client.srem(ACTIVE_KEY, investigation_id)
