"""The control workers' scanner: step deadlines and stalled investigations (see `store`).

A daemon thread in every control worker process. Claims are atomic Lua scripts in Redis, so
any number of control workers may scan; each due item is handled by one of them.
"""

from __future__ import annotations

import logging
import threading
import time

from worker.distributed.control import advance_closed_step, send_advance
from worker.distributed.runtime import Runtime
from worker.distributed.store import InvestigationNotFound, StoreUnavailable

log = logging.getLogger(__name__)


class DeadlineScanner:
    """A thread in each control worker: closes steps whose deadline passed, then advances them.

    Claims are atomic in Redis (worker.distributed.store), so any number of control workers
    may scan.
    """

    def __init__(self, rt: Runtime, interval_s: float = 0.5) -> None:
        self.rt = rt
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deadline-scanner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)

    def scan_once(self) -> int:
        # an advance still unrecorded after the task's hard limit died with its worker
        stale_s = self.rt.dist.stall_after_s
        now = time.time()
        claimed = self.rt.store.claim_due_deadlines(now, stale_s=stale_s)
        for investigation_id, step in claimed:
            log.info("step %s of %s closed at its deadline", step, investigation_id)
            advance_closed_step(self.rt, investigation_id, step)
            self.rt.store.forget_deadline(investigation_id, step)
        return len(claimed) + self._rescue_stalled(now, stale_s)

    def _rescue_stalled(self, now: float, stale_s: float) -> int:
        """Investigations deciding with no write for `stale_s`: their advance was lost."""
        rescued = 0
        for investigation_id in self.rt.store.claim_watched(now, recheck_s=stale_s):
            try:
                inv = self.rt.store.load(investigation_id).investigation
            except InvestigationNotFound:
                self.rt.store.unwatch(investigation_id)
                continue
            if inv.done:
                self.rt.store.unwatch(investigation_id)
            elif inv.status == "deciding" and now - inv.updated_at.timestamp() >= stale_s:
                log.warning("investigation %s stalled while deciding; advancing", inv.id)
                send_advance(self.rt, inv.id)
                rescued += 1
        return rescued

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.scan_once()
            except StoreUnavailable as exc:
                log.warning("deadline scan: %s", exc)
            except Exception:  # keep scanning whatever one round hit
                log.exception("deadline scan failed")
