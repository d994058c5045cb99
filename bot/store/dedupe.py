"""Handle each Slack event once: SET NX with a TTL on the event id and on channel+ts."""

from __future__ import annotations

import redis

from bot.store.threads import PREFIX


def first_time(client: redis.Redis, key: str, ttl_s: int) -> bool:
    """True for the first caller with `key` within `ttl_s`; False for every repeat."""
    return bool(client.set(f"{PREFIX}:seen:{key}", "1", nx=True, ex=ttl_s))


def event_keys(event_id: str | None, channel: str | None, ts: str | None) -> list[str]:
    """The keys one delivery claims: its event id, and the message it is about.

    A mention arrives as `app_mention` and as `message` with different event ids but the same
    channel and ts; a retry (X-Slack-Retry-Num) carries the same event id.
    """
    keys = []
    if event_id:
        keys.append(f"event:{event_id}")
    if channel and ts:
        keys.append(f"msg:{channel}:{ts}")
    return keys
