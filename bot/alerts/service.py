"""One Alertmanager notification -> an investigation thread, a note in one, or a refusal.

A firing group with no running investigation starts one (the same `WorkerGateway.start` and
`ThreadDirectory.register` the `/diagnose` listener uses) on the live worker hosts its alerts
name (the host label, port stripped); the bot's progress consumer then renders every step into
the thread, whose root message is posted here first. A repeat of the group (same `groupKey`)
while its investigation runs is a note in that thread; a resolved notification is a note and
ends the group's link to the thread. Hosts without a live worker are said so in the thread.

Group state lives in Redis (`bpfsleuth:alerts:group:<sha256(groupKey)>`), one writer at a time
per group (a short Redis lock: an Alertmanager HA pair sends each notification twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from typing import Any, Literal, cast

import redis
from pydantic import BaseModel, Field
from redis.lock import Lock
from slack_sdk.models.blocks import Block

from bot.alerts.models import Alert, WebhookPayload
from bot.chat.diagnose_command import MAX_HOSTS, MAX_SYMPTOM
from bot.gateway import GatewayError
from bot.services import STATE_TTL_S, BotServices
from bot.settings import AlertSettings
from bot.store.threads import SlackThread
from bot.views.blocks import SlackMessage, context, finish, section
from bot.views.investigation import root_message
from bot.views.models import InvestigationHeader
from bot.views.mrkdwn import escape, fit

log = logging.getLogger(__name__)
PREFIX = "bpfsleuth:alerts"
ALERTS_SHOWN = 10
_PORT = re.compile(r"^(?P<host>.+?)(?::\d{1,5})?$")
_BRACKETED = re.compile(r"^\[(?P<host>[0-9A-Fa-f:.]+)\](?::\d{1,5})?$")

Action = Literal["started", "noted", "resolved", "ignored", "no_live_host", "refused"]


class AlertError(ValueError):
    """A notification we cannot act on; the message says why (sent back with a 4xx)."""


class GroupBusy(Exception):
    """Another notification of this group is being handled for longer than we wait: a 503,
    which Alertmanager retries (it does not retry a 4xx)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"another notification of this alert group is being handled; retry in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many notifications for this alert group; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class GroupThread(BaseModel):
    """Where an alert group's investigation lives in Slack."""

    group_key: str
    channel_id: str
    thread_ts: str
    investigation_id: str | None = None
    hosts: list[str] = Field(default_factory=list)
    unknown_hosts: list[str] = Field(default_factory=list)
    started_at: float = Field(default_factory=time.time)


class AlertOutcome(BaseModel):
    action: Action
    group: str = Field(description="sha256 of the groupKey, first 16 hex digits.")
    investigation_id: str | None = None
    channel_id: str = ""
    thread_ts: str = ""
    hosts: list[str] = Field(default_factory=list)
    unknown_hosts: list[str] = Field(default_factory=list)
    detail: str = ""


def group_id(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


def strip_port(value: str) -> str:
    """`web-1:9100` -> `web-1`, `[::1]:9100` -> `::1`, `10.0.0.5` -> `10.0.0.5`."""
    value = value.strip()
    bracketed = _BRACKETED.match(value)
    if bracketed:
        return bracketed.group("host")
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    match = _PORT.match(value)
    return match.group("host") if match else value


def map_hosts(values: list[str], live: list[str]) -> tuple[list[str], list[str]]:
    """Label values -> (live worker hosts, values with no live worker). A value matches a live
    host by name, case-insensitively, or by its first DNS label (`web-1.prod.example` ->
    `web-1`)."""
    by_name = {name.lower(): name for name in live}
    by_short = {name.lower().split(".")[0]: name for name in live}
    found: list[str] = []
    unknown: list[str] = []
    for value in values:
        host = strip_port(value)
        if not host:
            continue
        name = by_name.get(host.lower()) or by_short.get(host.lower().split(".")[0])
        if name is None:
            if host not in unknown:
                unknown.append(host)
        elif name not in found:
            found.append(name)
    return found, unknown


def symptom_of(payload: WebhookPayload) -> str:
    """The alert's name and its summary/description, as the investigation's symptom."""
    firing = payload.firing() or payload.alerts
    first = firing[0].annotations
    common = payload.common_annotations
    summary = common.get("summary") or first.get("summary", "")
    description = common.get("description") or first.get("description", "")
    parts = [f"Alert {payload.alertname()} firing"]
    if summary:
        parts.append(summary)
    if description and description != summary:
        parts.append(description)
    text = ": ".join(parts[:2]) + (f". {parts[2]}" if len(parts) > 2 else "")
    return text[:MAX_SYMPTOM]


class AlertService:
    def __init__(self, services: BotServices, settings: AlertSettings) -> None:
        self.services = services
        self.settings = settings
        self.redis: redis.Redis = services.redis

    # Redis ------------------------------------------------------------------------------
    @staticmethod
    def _group_key(gid: str) -> str:
        return f"{PREFIX}:group:{gid}"

    def _load(self, gid: str) -> GroupThread | None:
        raw = cast(str | None, self.redis.get(self._group_key(gid)))
        return GroupThread.model_validate_json(raw) if raw else None

    def _save(self, gid: str, group: GroupThread) -> None:
        self.redis.set(self._group_key(gid), group.model_dump_json(), ex=STATE_TTL_S)

    def check_rate(self, group_key: str) -> None:
        """At most `group_rate_per_min` notifications per group per minute window."""
        window = int(time.time() // 60)
        key = f"{PREFIX}:rate:{group_id(group_key)[:32]}:{window}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count = int(pipe.execute()[0])
        if count > self.settings.group_rate_per_min:
            raise RateLimited(max(1, 60 - int(time.time() % 60)))

    # handling ---------------------------------------------------------------------------
    def handle(self, payload: WebhookPayload) -> AlertOutcome:
        gid = group_id(payload.group_key)
        lock = Lock(self.redis, f"{PREFIX}:lock:{gid}", timeout=30)
        if not lock.acquire(blocking=True, blocking_timeout=self.settings.lock_wait_s):
            raise GroupBusy(max(1, round(self.settings.lock_wait_s)))
        try:
            if payload.status == "resolved":
                return self._resolved(gid, payload)
            return self._firing(gid, payload)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    def _channel(self, payload: WebhookPayload) -> str:
        label = self.settings.channel_label
        channel = (
            payload.common_labels.get(label)
            or payload.group_labels.get(label)
            or self.settings.channel
        )
        if not channel:
            raise AlertError(
                f"no channel for this alert: set BPFSLEUTH_ALERT_CHANNEL or the `{label}` label"
            )
        return channel.strip().lstrip("#")

    def _host_values(self, payload: WebhookPayload) -> list[str]:
        label = self.settings.host_label
        values = [a.labels[label] for a in payload.firing() if a.labels.get(label)]
        if not values and payload.common_labels.get(label):
            values = [payload.common_labels[label]]
        return values

    def _running(self, group: GroupThread) -> bool:
        if group.investigation_id is None:
            return False
        inv = self.services.gateway.load(group.investigation_id)
        return inv is not None and not inv.done

    def _firing(self, gid: str, payload: WebhookPayload) -> AlertOutcome:
        group = self._load(gid)
        values = self._host_values(payload)
        # Redis away: GatewayError -> 503, and Alertmanager sends the notification again
        live = [h.name for h in self.services.live_hosts(fresh=True)]
        hosts, unknown = map_hosts(values, live)
        hosts = hosts[:MAX_HOSTS]
        if group is not None and (
            self._running(group) or (group.investigation_id is None and not hosts)
        ):
            self._post(group.channel_id, group.thread_ts, _repeat_message(payload, hosts, unknown))
            return self._outcome("noted", gid, group, detail="added to the running thread")
        channel = self._channel(payload)
        symptom = symptom_of(payload)
        if not hosts:
            why = (
                f"the `{self.settings.host_label}` label names no host"
                if not values
                else "no live bpfsleuth worker on " + ", ".join(unknown)
            )
            channel, ts = self._post_root(channel, _no_host_message(payload, symptom, why, live))
            group = GroupThread(
                group_key=payload.group_key, channel_id=channel, thread_ts=ts, unknown_hosts=unknown
            )
            self._save(gid, group)
            self._post(channel, ts, _alerts_message(payload))
            return self._outcome("no_live_host", gid, group, detail=why)
        try:
            investigation_id = self.services.gateway.start(
                symptom, hosts, asked_by=f"alertmanager:{payload.alertname()[:64]}"
            )
        except GatewayError as exc:  # a host died between the lookup and the start
            channel, ts = self._post_root(
                channel, _no_host_message(payload, symptom, str(exc), live)
            )
            group = GroupThread(group_key=payload.group_key, channel_id=channel, thread_ts=ts)
            self._save(gid, group)
            return self._outcome("no_live_host", gid, group, detail=str(exc))
        header = InvestigationHeader(
            investigation_id=investigation_id, symptom=symptom, hosts=hosts
        )
        channel, ts = self._post_root(channel, root_message(header))
        thread = SlackThread(
            investigation_id=investigation_id,
            channel_id=channel,
            symptom=symptom,
            hosts=hosts,
            thread_ts=ts,
        )
        self.services.threads.register(thread)
        self.services.threads.set_root(investigation_id, ts)
        group = GroupThread(
            group_key=payload.group_key,
            channel_id=channel,
            thread_ts=ts,
            investigation_id=investigation_id,
            hosts=hosts,
            unknown_hosts=unknown,
        )
        self._save(gid, group)
        self._post(channel, ts, _alerts_message(payload, unknown=unknown))
        return self._outcome("started", gid, group)

    def _resolved(self, gid: str, payload: WebhookPayload) -> AlertOutcome:
        group = self._load(gid)
        if group is None:
            return AlertOutcome(action="ignored", group=gid[:16], detail="no thread for this group")
        self._post(group.channel_id, group.thread_ts, _resolved_message(payload))
        self.redis.delete(self._group_key(gid))
        return self._outcome("resolved", gid, group)

    def _post(self, channel: str, thread_ts: str, message: SlackMessage) -> str:
        """Post in a thread; returns the message's ts."""
        return self._send(channel, thread_ts, message)[1]

    def _post_root(self, channel: str, message: SlackMessage) -> tuple[str, str]:
        """Post a root message; returns (channel ID, ts): a label may name the channel."""
        return self._send(channel, None, message)

    def _send(self, channel: str, thread_ts: str | None, message: SlackMessage) -> tuple[str, str]:
        from slack_sdk.errors import SlackApiError

        try:
            reply: Any = self.services.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **message.as_kwargs()
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            raise AlertError(f"cannot post in channel {channel}: {error}") from exc
        return str(reply.get("channel") or channel), str(reply["ts"])

    @staticmethod
    def _outcome(action: Action, gid: str, group: GroupThread, detail: str = "") -> AlertOutcome:
        return AlertOutcome(
            action=action,
            group=gid[:16],
            investigation_id=group.investigation_id,
            channel_id=group.channel_id,
            thread_ts=group.thread_ts,
            hosts=group.hosts,
            unknown_hosts=group.unknown_hosts,
            detail=detail,
        )


# messages -----------------------------------------------------------------------------
def _alert_line(alert: Alert) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")
    since = f" since {alert.starts_at:%H:%M:%S} UTC" if alert.starts_at else ""
    return f"• `{escape(fit(labels, 300))}`{since}"


def _alerts_message(payload: WebhookPayload, *, unknown: list[str] | None = None) -> SlackMessage:
    firing = payload.firing()
    lines = [_alert_line(a) for a in firing[:ALERTS_SHOWN]]
    more = len(firing) - ALERTS_SHOWN + payload.truncated_alerts
    if more > 0:
        lines.append(f"… and {more} more")
    blocks: list[Block] = [
        section(fit(f"*{len(firing)} alert(s) firing in this group:*\n" + "\n".join(lines), 2900))
    ]
    if unknown:
        blocks.append(
            section(
                ":warning: No live bpfsleuth worker on "
                + ", ".join(f"`{escape(h)}`" for h in unknown)
                + ": nothing is run there."
            )
        )
    if payload.external_url:
        blocks.append(context(f"from Alertmanager {escape(payload.external_url)}"))
    return finish(f"{len(firing)} alert(s) firing", blocks)


def _no_host_message(
    payload: WebhookPayload, symptom: str, why: str, live: list[str]
) -> SlackMessage:
    shown = ", ".join(live[:20]) or "none"
    text = (
        f":rotating_light: *{escape(fit(symptom, 1500))}*\n"
        f":warning: Not investigating: {escape(fit(why, 500))}. Live hosts: {escape(shown)}. "
        f"Start a worker there (`bpfsleuth worker --host NAME`) or set the "
        f"`{escape(payload.alertname())}` alert's host label to a worker's name."
    )
    return finish(f"Alert {payload.alertname()}: not investigated ({why})", [section(text)])


def _repeat_message(payload: WebhookPayload, hosts: list[str], unknown: list[str]) -> SlackMessage:
    firing = payload.firing()
    text = f":repeat: Alertmanager again: {len(firing)} alert(s) still firing in this group"
    if unknown and not hosts:
        text += "; still no live bpfsleuth worker on " + ", ".join(
            f"`{escape(h)}`" for h in unknown
        )
    lines = [_alert_line(a) for a in firing[:ALERTS_SHOWN]]
    body = fit(text + "\n" + "\n".join(lines), 2900)
    return finish(f"{len(firing)} alert(s) still firing", [section(body)])


def _resolved_message(payload: WebhookPayload) -> SlackMessage:
    ends = [a.ends_at for a in payload.alerts if a.ends_at is not None]
    when = f" at {max(ends):%H:%M:%S} UTC" if ends else ""
    text = f":white_check_mark: Alertmanager says *{escape(payload.alertname())}* resolved{when}."
    return finish(f"Alert {payload.alertname()} resolved", [section(text)])
