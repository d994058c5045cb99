"""The CLI side of the distributed loop: start through the broker, follow the progress stream."""

from __future__ import annotations

import time
from collections.abc import Callable

from worker.distributed.control import start_investigation
from worker.distributed.runtime import Runtime, runtime
from worker.distributed.store import InvestigationNotFound, StoreUnavailable
from worker.loop.events import Notice, ProgressEvent, ResolutionReached
from worker.loop.investigation import Budgets, Investigation


class FollowError(RuntimeError):
    """Following an investigation failed; the message is for the person at the terminal."""


def follow(
    rt: Runtime,
    investigation_id: str,
    on_event: Callable[[ProgressEvent], None],
    *,
    timeout_s: float,
    redis_patience_s: float = 60.0,
) -> Investigation:
    """Feed progress events to `on_event` until the investigation is done; return it.

    A Redis outage is reported once as a Notice and waited out for `redis_patience_s`; state
    lost in the outage (Redis restarted without persistence) is a `FollowError`.
    """
    after = "0-0"
    deadline = time.monotonic() + timeout_s
    outage_since: float | None = None
    last_check = 0.0
    resolution_seen = False
    while True:
        if time.monotonic() > deadline:
            raise FollowError(
                f"investigation {investigation_id} did not finish within {timeout_s:.0f} s; "
                "are the control and host workers running? (`bpfsleuth hosts`)"
            )
        try:
            # after the resolution event the final state is one write away: poll without
            # blocking (Redis times blocking reads out at its `hz` tick, 100 ms by default)
            if resolution_seen:
                time.sleep(0.005)
            block_ms = None if resolution_seen else 1000
            events = rt.store.read_progress(investigation_id, after, block_ms=block_ms)
            if outage_since is not None:
                on_event(
                    Notice(
                        investigation_id=investigation_id,
                        message=f"Redis is back after {time.monotonic() - outage_since:.1f} s",
                    )
                )
                outage_since = None
            for entry_id, event in events:
                after = entry_id
                on_event(event)
                resolution_seen = resolution_seen or isinstance(event, ResolutionReached)
            if resolution_seen or time.monotonic() - last_check > 2.0:
                last_check = time.monotonic()
                inv = rt.store.load(investigation_id).investigation
                if inv.done:
                    return inv
        except StoreUnavailable as exc:
            if outage_since is None:
                outage_since = time.monotonic()
                on_event(
                    Notice(
                        investigation_id=investigation_id,
                        message=f"lost Redis ({exc}); waiting up to {redis_patience_s:.0f} s",
                    )
                )
            elif time.monotonic() - outage_since > redis_patience_s:
                raise FollowError(
                    f"Redis at {rt.store.url} has been unreachable for {redis_patience_s:.0f} s; "
                    f"investigation {investigation_id} is stuck until it is back"
                ) from exc
            time.sleep(0.5)
        except InvestigationNotFound as exc:
            raise FollowError(str(exc)) from exc


def run_via_celery(
    symptom: str,
    hosts: list[str],
    on_event: Callable[[ProgressEvent], None],
    *,
    timeout_s: float | None = None,
    asked_by: str = "",
    budgets: Budgets | None = None,
    flow: str | None = None,
) -> Investigation:
    """`bpfsleuth diagnose --via celery`: start through the broker, follow, return the result.

    Raises `HostNotLive` (no worker for a named host) or `FollowError` with a clear message.
    """
    rt = runtime()
    try:
        rt.store.ping()
    except StoreUnavailable as exc:
        raise FollowError(str(exc)) from exc
    inv = start_investigation(rt, symptom, hosts, asked_by=asked_by, budgets=budgets, flow=flow)
    limit = timeout_s if timeout_s is not None else inv.budgets.max_wall_s + 120.0
    return follow(rt, inv.id, on_event, timeout_s=limit)
