"""The progress consumer: a thread in the bot process that renders ProgressEvents to Slack.

Why a thread here rather than a Celery task on the control queue: the bot is the only process
that holds the Slack token and knows Slack (arrows point bot -> worker, never back); rendering
needs per-message state (which message shows which step, when it was last updated) that a
thread keeps between events, so updates can be throttled and coalesced; and it reads the
store's per-investigation progress streams (Redis XREAD), which survive a bot restart: the
cursor of each thread is persisted, so a restarted bot resumes where it stopped. One consumer
runs at a time (a Redis lease), so two bot replicas do not post twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from pydantic import TypeAdapter, ValidationError
from redis.exceptions import LockError
from redis.lock import Lock

from bot.progress.approvals import ApprovalBoard, PostedApproval
from bot.progress.outputs import step_outputs_text
from bot.progress.state import Effect, StepMessage, ThreadRender, apply, next_update_at
from bot.services import STATE_TTL_S, BotServices
from bot.store.threads import SlackThread
from bot.views.approval import approval_message
from bot.views.blocks import SlackMessage, context, finish
from bot.views.investigation import root_message
from bot.views.models import InvestigationHeader
from bot.views.mrkdwn import escape
from bot.views.resolution import resolution_message
from bot.views.step import step_message
from worker import keys
from worker.loop.events import ProgressEvent

if TYPE_CHECKING:
    from slack_sdk.web import SlackResponse

log = logging.getLogger(__name__)
LEASE_KEY = keys.SLACK_CONSUMER_LEASE
WAKE_STREAM = keys.SLACK_WAKE_STREAM
MIN_PERIOD_S = 0.05
MAX_DEFER_S = 0.5
REFRESH_S = 5.0
COUNTDOWN_S = 5.0
ROOT_RETRY_S = 10.0
# Errors after which posting in the channel will not work by retrying.
CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}


class ProgressConsumer:
    def __init__(self, services: BotServices, *, approval_timeout_s: float | None = None) -> None:
        self.services = services
        self.approval_timeout_s = approval_timeout_s
        self.redis = services.redis
        self.client = services.client
        self.threads = services.threads
        self.approvals = ApprovalBoard(services)
        self.interval_s = services.settings.update_interval_s
        self._renders: dict[str, ThreadRender] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # one consumer at a time: a lease renewed atomically (Lua) while this one is alive
        self._lease = Lock(
            self.redis,
            LEASE_KEY,
            timeout=services.settings.consumer_lease_s,
            blocking=False,
            thread_local=False,  # taken in the consumer thread, given back by stop()
        )
        self._wake_cursor = "$"
        self._followed: set[str] = set()
        self._known: dict[str, SlackThread] = {}
        self._last_refresh = 0.0
        self._root_retry_at: dict[str, float] = {}

    # lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="slack-progress", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(LockError):  # not held, or already taken over
            self._lease.release()

    def _hold_lease(self) -> bool:
        """Renew the lease if this consumer holds it, else try to take it."""
        if self._lease.local.token is not None:
            try:
                return bool(self._lease.reacquire())
            except LockError:  # expired and maybe taken by another bot: start over
                self._lease.local.token = None
        return bool(self._lease.acquire(blocking=False))

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._hold_lease():
                    self._stop.wait(1.0)
                    continue
                self.poll_once()
            except Exception:  # keep rendering other threads whatever one of them does
                log.exception("progress consumer iteration failed")
                self._stop.wait(1.0)

    # one iteration --------------------------------------------------------------------
    def poll_once(self, block_ms: int = 500) -> None:
        """Read what is new on the followed threads' progress streams and render it.

        An iteration is one XREAD over the followed streams plus the work for new events: the
        followed set is refreshed from Redis every few seconds (dropping investigations silent
        for too long) and grown from the wake stream in between, and threads whose root is
        posted are kept in memory. Iterations are at least MIN_PERIOD_S apart and wait (up to
        MAX_DEFER_S) while requests are in flight, so a burst of /diagnose requests is rendered
        in a few batches instead of competing with the acks for the CPU.
        """
        self.services.in_flight.wait_idle(MAX_DEFER_S)
        started = time.monotonic()
        if started - self._last_refresh > REFRESH_S:
            silent_s = self.services.settings.silent_after_s
            self._followed = set(self.threads.prune_silent(sorted(self.threads.active()), silent_s))
            self._last_refresh = started
        for investigation_id in sorted(self._followed - self._known.keys()):
            self._ensure_root(investigation_id)
        streams: dict[str, str] = {WAKE_STREAM: self._wake_cursor}
        for investigation_id in sorted(self._followed & self._known.keys()):
            streams[keys.progress(investigation_id)] = self._render(investigation_id).cursor
        wait = self._next_flush_in()
        block = block_ms if wait is None else max(1, min(block_ms, int(wait * 1000)))
        reply = cast(list[Any], self.redis.xread(streams, count=200, block=block) or [])  # type: ignore[arg-type]
        for stream, entries in reply:
            if stream == WAKE_STREAM:
                self._wake_cursor = entries[-1][0]
                woken = {
                    str(fields["investigation_id"])
                    for _, fields in entries
                    if fields.get("investigation_id")
                }
                # A wake entry read after its investigation was retired (given up on, or
                # resolved since) is stale: following it again would post its root again.
                if woken:
                    self._followed.update(woken & self.threads.active())
                continue
            investigation_id = stream.removeprefix("bpfsleuth:inv:").removesuffix(":progress")
            for entry_id, fields in entries:
                self._handle(investigation_id, entry_id, fields.get("event", ""))
        self._flush(force=False)
        rest = MIN_PERIOD_S - (time.monotonic() - started)
        if rest > 0:
            self._stop.wait(rest)

    def _render(self, investigation_id: str) -> ThreadRender:
        render = self._renders.get(investigation_id)
        if render is None:
            raw = cast(str | None, self.redis.get(keys.slack_render(investigation_id)))
            render = (
                ThreadRender.model_validate_json(raw)
                if raw
                else ThreadRender(investigation_id=investigation_id)
            )
            self._renders[investigation_id] = render
        return render

    def _save(self, render: ThreadRender) -> None:
        self.redis.set(
            keys.slack_render(render.investigation_id), render.model_dump_json(), ex=STATE_TTL_S
        )

    def _ensure_root(self, investigation_id: str) -> SlackThread | None:
        """The investigation's thread, its root message posted first when it is not yet."""
        known = self._known.get(investigation_id)
        if known is not None:
            return known
        thread = self.threads.get(investigation_id)
        if thread is not None and thread.thread_ts is not None:
            self._known[investigation_id] = thread
            return thread
        if thread is None:
            return None
        header = InvestigationHeader(
            investigation_id=investigation_id,
            symptom=thread.symptom,
            hosts=thread.hosts,
            requested_by=thread.requested_by,
        )
        if time.monotonic() < self._root_retry_at.get(investigation_id, 0.0):
            return None
        reply, error = self._post_root(thread.channel_id, root_message(header))
        if reply is None:
            if error in CANNOT_POST:
                self._give_up(thread, error)
            else:
                self._root_retry_at[investigation_id] = time.monotonic() + ROOT_RETRY_S
            return None
        posted = self.threads.set_root(investigation_id, str(reply["ts"]))
        if posted is not None:
            self._known[investigation_id] = posted
        return posted

    def _post_root(
        self, channel: str, message: SlackMessage
    ) -> tuple[SlackResponse | None, str | None]:
        from slack_sdk.errors import SlackApiError

        try:
            return self.client.chat_postMessage(
                channel=channel, unfurl_links=False, **message.as_kwargs()
            ), None
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            log.error("root message in %s failed: %s", channel, error)
            return None, error

    def _give_up(self, thread: SlackThread, error: str) -> None:
        """The channel cannot take our messages (most often: the bot was never invited). Tell
        the person who asked, through the slash command's response_url, and stop following."""
        self.threads.retire(thread.investigation_id)
        self._followed.discard(thread.investigation_id)
        if not thread.response_url:
            return
        from slack_sdk.webhook import WebhookClient

        text = (
            f"I cannot post in this channel ({error}), so investigation "
            f"`{thread.investigation_id}` has no thread here. Invite me with "
            "`/invite @bpfsleuth`, then run `/diagnose` again."
        )
        try:
            WebhookClient(thread.response_url, timeout=10).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        except Exception:  # the person is told nothing more; the log says why
            log.exception("telling %s about %s failed", thread.requested_by, error)

    def _handle(self, investigation_id: str, entry_id: str, payload: str) -> None:
        render = self._render(investigation_id)
        thread = self._ensure_root(investigation_id)
        if thread is None or thread.thread_ts is None:
            return  # retried on the next pass: the cursor did not move
        try:
            event = TypeAdapter(ProgressEvent).validate_json(payload)
        except ValidationError as exc:
            log.warning("unreadable progress event %s of %s: %s", entry_id, investigation_id, exc)
            render.cursor = entry_id
            self._save(render)
            return
        effects = apply(
            render,
            event,
            hosts=thread.hosts,
            started_at=thread.started_at,
            approval_timeout_s=self.approval_timeout_s,
        )
        for effect in effects:
            self._carry_out(thread, render, effect)
        render.cursor = entry_id
        self._save(render)

    # effects --------------------------------------------------------------------------
    def _carry_out(self, thread: SlackThread, render: ThreadRender, effect: Effect) -> None:
        assert thread.thread_ts is not None
        if effect.kind == "post_step":
            message = render.steps[effect.step]
            reply = self._post(thread.channel_id, thread.thread_ts, step_message(message.view))
            if reply is not None:
                message.ts = str(reply["ts"])
                message.last_update = time.time()
                self._save(render)  # before anything else: a restart must not post it again
        elif effect.kind == "update_step":
            pass  # coalesced: `_flush` sends at most one update per interval
        elif effect.kind == "close_step":
            self._close_step(thread, render, effect.step)
        elif effect.kind == "post_approval" and effect.approval is not None:
            if self.approvals.get(render.investigation_id, effect.approval.command_id):
                return  # posted before a restart
            reply = self._post(
                thread.channel_id, thread.thread_ts, approval_message(effect.approval)
            )
            if reply is not None:
                self.approvals.remember_posted(
                    PostedApproval(
                        channel_id=thread.channel_id, ts=str(reply["ts"]), view=effect.approval
                    )
                )
        elif effect.kind == "expire_approval":
            self.approvals.expire(render.investigation_id, effect.command_id)
        elif effect.kind == "post_notice":
            self._post(
                thread.channel_id,
                thread.thread_ts,
                finish(effect.text, [context(f":information_source: {escape(effect.text)}")]),
            )
        elif effect.kind == "post_resolution" and effect.resolution is not None:
            view = effect.resolution.model_copy(update={"symptom": thread.symptom})
            if render.resolved_steps:  # an earlier card exists: this one answers a follow-up
                view = view.model_copy(update=self._last_question(render.investigation_id))
            if self._post(thread.channel_id, thread.thread_ts, resolution_message(view)):
                render.resolved_steps.append(effect.step)
                self._save(render)
            header = InvestigationHeader(
                investigation_id=render.investigation_id,
                symptom=thread.symptom,
                hosts=thread.hosts,
                requested_by=thread.requested_by,
                status="resolved",
                step=effect.step,
                root_cause=view.root_cause,
            )
            self._update(thread.channel_id, thread.thread_ts, root_message(header))
            self._retire(render)

    def _last_question(self, investigation_id: str) -> dict[str, str]:
        inv = self.services.gateway.load(investigation_id)
        if inv is None or not inv.followups:
            return {}
        last = inv.followups[-1]
        return {"question": last.question, "asked_by": last.asked_by.removeprefix("slack:")}

    def _retire(self, render: ThreadRender) -> None:
        """Resolved: stop following (a follow-up wakes it again) and free the memory."""
        self._save(render)
        self.threads.retire(render.investigation_id)
        self._followed.discard(render.investigation_id)
        self._known.pop(render.investigation_id, None)
        self._renders.pop(render.investigation_id, None)

    def _close_step(self, thread: SlackThread, render: ThreadRender, step: int) -> None:
        """A step is over: final update of its message, and its outputs inline or as a file."""
        message = render.steps.get(step)
        if message is None:
            return
        text = step_outputs_text(self.services.gateway, render.investigation_id, step)
        if len(text) > self.services.settings.upload_threshold_chars:
            title = f"Step {step} outputs ({render.investigation_id})"
            if self._upload(thread, title, f"step-{step}-outputs.txt", text):
                message.view.outputs_file = title
        else:
            message.view.outputs = text
        message.dirty = True
        self._send_update(thread, message)

    # throttled updates -----------------------------------------------------------------
    def _due_at(self, message: StepMessage) -> float | None:
        return next_update_at(message, self.interval_s, COUNTDOWN_S, time.time())

    def _next_flush_in(self) -> float | None:
        now = time.time()
        due = [
            when
            for render in self._renders.values()
            for message in render.steps.values()
            if (when := self._due_at(message)) is not None
        ]
        return max(0.0, min(due) - now) if due else None

    def _flush(self, *, force: bool) -> None:
        now = time.time()
        for investigation_id, render in list(self._renders.items()):
            sent = False
            for message in render.steps.values():
                due = self._due_at(message)
                if due is None or (not force and now < due):
                    continue
                thread = self._known.get(investigation_id)
                if thread is not None:
                    self._send_update(thread, message)
                    sent = True
            if sent:
                self._save(render)

    def _send_update(self, thread: SlackThread, message: StepMessage) -> None:
        if not message.ts:
            return
        if self._update(thread.channel_id, message.ts, step_message(message.view)):
            message.dirty = False
            message.last_update = time.time()

    # Slack calls (429s are retried by the client's RateLimitErrorRetryHandler) ---------
    def _post(
        self, channel: str, thread_ts: str | None, message: SlackMessage
    ) -> SlackResponse | None:
        from slack_sdk.errors import SlackApiError

        try:
            return self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **message.as_kwargs()
            )
        except SlackApiError as exc:
            log.error("chat.postMessage to %s failed: %s", channel, exc.response.get("error"))
            return None

    def _update(self, channel: str, ts: str, message: SlackMessage) -> bool:
        from slack_sdk.errors import SlackApiError

        try:
            self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
            return True
        except SlackApiError as exc:
            log.error("chat.update of %s failed: %s", ts, exc.response.get("error"))
            return False

    def _upload(self, thread: SlackThread, title: str, filename: str, text: str) -> bool:
        """files.getUploadURLExternal + upload + files.completeUploadExternal (files_upload_v2)."""
        from slack_sdk.errors import SlackApiError

        try:
            self.client.files_upload_v2(
                channel=thread.channel_id,
                thread_ts=thread.thread_ts,
                content=text,
                filename=filename,
                title=title,
            )
            return True
        except SlackApiError as exc:
            log.error("upload of %s failed: %s", filename, exc.response.get("error"))
            return False
