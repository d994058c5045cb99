"""Investigation state, the step join, the audit stream and progress streams, in Redis.

Keys (built in `worker.keys`, all under `bpfsleuth:`, every per-investigation key expires after
`BPFSLEUTH_STATE_TTL_S`):
- `inv:<id>`            hash {version, data}: the Investigation as versioned pydantic JSON.
                        Writes are optimistic: WATCH the key, check the version, MULTI/EXEC.
- `inv:<id>:step:<n>`   hash: the join of step n. `meta` (StepMeta JSON), `result:<host>` (one
                        PlanResult per host, first write wins), `closed` (`complete`|`deadline`).
- `inv:<id>:progress`   stream of ProgressEvent JSON (field `event`), read by the CLI and Slack.
- `audit`               stream: one entry per command and probe run on any host.

Design choice (issue 5 §2): we join a step's fan-out ourselves instead of with a Celery chord.
A chord on Redis keeps its counter in the result backend and fires only when every header task
stores a result; a host worker killed with SIGKILL never stores one, so the chord hangs until
the visibility timeout redelivers the task (an hour), and a chord cannot be ended early by a
deadline. Here each `run_plan` stores its PlanResult with a Lua script that, atomically, refuses
late or duplicate results and reports whether the step is now complete; the deadline scanner
closes the step with another Lua script. Exactly one of them sees the transition to `closed`,
and only that one enqueues `advance`: the step advances exactly once, whichever comes first, and
nothing waits on a result inside a task.

Deadlines live in the sorted set `deadlines` (score = Unix time, member = `<id>:<step>`), not in
Celery countdown tasks: an ETA task sits unacknowledged in one control worker's memory (lost
for an hour, the visibility timeout, if that worker dies) and kombu's Redis transport crashes
the worker when the broker connection drops while it holds one (seen here when restarting
Redis). Every control worker runs a scanner thread (`worker.distributed.scanner`) that claims due
deadlines with one Lua script, so a deadline survives any worker and fires once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, cast

import redis
from pydantic import BaseModel, Field, TypeAdapter

from worker import keys
from worker.loop.events import ProgressEvent
from worker.loop.investigation import Investigation
from worker.protocol import CommandResult, EbpfResult, PlanResult

AUDIT_STREAM = keys.AUDIT_STREAM
AUDIT_MAXLEN = 100_000
PROGRESS_MAXLEN = 5_000
_EVENT_ADAPTER: TypeAdapter[ProgressEvent] = TypeAdapter(ProgressEvent)

CloseReason = Literal["complete", "deadline"]


class StoreError(RuntimeError):
    """Redis could not be used; the message says which Redis and what to do."""


class StoreUnavailable(StoreError):
    pass


class InvestigationNotFound(StoreError):
    pass


class VersionConflict(StoreError):
    pass


class StepMeta(BaseModel):
    """What the control side promised for one step: which hosts, until when."""

    investigation_id: str
    step: int
    hosts: list[str]
    deadline_s: float = Field(description="Seconds the step may take before it is closed.")
    deadline_at: float = Field(description="Unix time of the deadline.")
    dispatched: bool = False


class StepOutcome(BaseModel):
    """A closed step: one PlanResult per expected host (synthesised for missing hosts)."""

    step: int
    closed: CloseReason
    results: list[PlanResult]
    missing_hosts: list[str] = Field(default_factory=list)


class AuditEntry(BaseModel):
    """One command or probe run on a host (docs/architecture.md §5)."""

    investigation_id: str
    step: int
    host: str
    kind: Literal["command", "probe"]
    id: str
    argv: str = Field(description="The command line or the probe request as run.")
    verdict: str = ""
    ran: bool = False
    exit_code: int | None = None
    error: str = ""
    duration_s: float = 0.0
    sandbox: str = Field(default="", description="Sandbox layers applied (commands only).")
    asked_by: str = ""
    approved_by: str = ""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of_command(
        cls,
        command: CommandResult,
        *,
        investigation_id: str,
        step: int,
        host: str,
        asked_by: str,
        approved_by: str,
        id: str | None = None,
        sandbox: str = "",
    ) -> AuditEntry:
        """The entry for a command's result (`id`: the command's own id unless given)."""
        return cls(
            investigation_id=investigation_id,
            step=step,
            host=host,
            kind="command",
            id=command.id if id is None else id,
            argv=command.command,
            verdict=command.verdict,
            ran=command.ran,
            exit_code=command.exit_code,
            error=command.note if not command.ran else "",
            duration_s=command.duration_s,
            sandbox=sandbox,
            asked_by=asked_by,
            approved_by=approved_by,
        )

    @classmethod
    def of_probe(
        cls,
        probe: EbpfResult,
        *,
        investigation_id: str,
        step: int,
        host: str,
        id: str,
        asked_by: str,
    ) -> AuditEntry:
        """The entry for a catalog probe's result, run as asked (approved by the catalog)."""
        return cls(
            investigation_id=investigation_id,
            step=step,
            host=host,
            kind="probe",
            id=id,
            argv=f"{probe.probe or probe.program_name} {probe.resolved_from}".strip(),
            verdict="allow",
            ran=probe.error is None,
            error=probe.error or "",
            duration_s=probe.duration_s,
            asked_by=asked_by,
            approved_by="catalog",
        )


class StoredInvestigation(BaseModel):
    version: int
    investigation: Investigation


# KEYS[1] step hash. ARGV: host, PlanResult JSON, ttl seconds.
# Returns -1 when the step is already closed (a late result), -2 for a duplicate (a
# redelivered run_plan), 0 when stored with hosts still missing, 1 when this result completed
# the step (the caller, and only it, enqueues advance).
# O(1) per result: a counter of answers against the expected count written with the meta, so
# a step to N hosts costs N small scripts, not N^2 lookups.
_RECORD_RESULT_LUA = """
if redis.call('HEXISTS', KEYS[1], 'meta') == 0 then return -3 end
if redis.call('HEXISTS', KEYS[1], 'closed') == 1 then return -1 end
if redis.call('HSETNX', KEYS[1], 'result:' .. ARGV[1], ARGV[2]) == 0 then return -2 end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local answered = redis.call('HINCRBY', KEYS[1], 'answered', 1)
if answered < tonumber(redis.call('HGET', KEYS[1], 'expected')) then return 0 end
redis.call('HSET', KEYS[1], 'closed', 'complete')
return 1
"""

# KEYS[1] step hash. Returns 1 when this call closed the step, 0 when it was already closed.
_CLOSE_AT_DEADLINE_LUA = """
if redis.call('HEXISTS', KEYS[1], 'meta') == 0 then return -3 end
if redis.call('HSETNX', KEYS[1], 'closed', 'deadline') == 1 then return 1 end
return 0
"""

# KEYS[1] deadlines zset. ARGV: now, lease seconds, max items, step key prefix, stale seconds.
# Each due member `<id>:<step>` is looked at once its time comes:
# - step recorded by an advance (or its state gone): dropped, the zset stays small;
# - advance sent less than `stale` seconds ago (`advanced` = send time): wait for it;
# - otherwise (still open: close it now as 'deadline'; closed but its advance never sent, or
#   sent and lost with a dead control worker): lease it (re-score to now + lease) and return it,
#   so the caller enqueues advance and marks the send. A caller that dies in between is covered
#   when the lease runs out; advance is idempotent.
_CLAIM_DEADLINES_LUA = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, member in ipairs(due) do
  local sep = string.find(member, ':[^:]*$')
  local key = ARGV[4] .. string.sub(member, 1, sep - 1) .. ':step:' .. string.sub(member, sep + 1)
  local advanced = redis.call('HGET', key, 'advanced')
  if redis.call('HEXISTS', key, 'meta') == 0 or redis.call('HEXISTS', key, 'recorded') == 1 then
    redis.call('ZREM', KEYS[1], member)
  elseif advanced and now - tonumber(advanced) < tonumber(ARGV[5]) then
    redis.call('ZADD', KEYS[1], tonumber(advanced) + tonumber(ARGV[5]), member)
  else
    redis.call('HSETNX', key, 'closed', 'deadline')
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
    table.insert(claimed, member)
  end
end
return claimed
"""
DEADLINES_KEY = keys.DEADLINES
WATCHDOG_KEY = keys.WATCHDOG

# KEYS[1] watchdog zset. ARGV: now, recheck seconds, max items. Due investigation ids are
# re-scored to now + recheck and returned: one scanner at a time looks at each.
_CLAIM_WATCHDOG_LUA = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
end
return due
"""


def connect(url: str) -> redis.Redis:
    """A client that fails in seconds, not minutes, when Redis is away."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=10,
        decode_responses=True,
    )


@contextmanager
def _clear_errors(url: str) -> Iterator[None]:
    try:
        yield
    except redis.exceptions.ConnectionError as exc:
        raise StoreUnavailable(
            f"Redis at {url} is not reachable ({exc}); start redis-server or fix REDIS_URL"
        ) from exc
    except redis.exceptions.TimeoutError as exc:
        raise StoreUnavailable(f"Redis at {url} timed out ({exc})") from exc


class Store:
    """Everything the distributed loop keeps in Redis. One instance per process is enough."""

    def __init__(self, url: str, *, ttl_s: int, client: redis.Redis | None = None) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.client = client or connect(url)
        self._record_result = self.client.register_script(_RECORD_RESULT_LUA)
        self._close_at_deadline = self.client.register_script(_CLOSE_AT_DEADLINE_LUA)
        self._claim_deadlines = self.client.register_script(_CLAIM_DEADLINES_LUA)
        self._claim_watchdog = self.client.register_script(_CLAIM_WATCHDOG_LUA)

    # keys -------------------------------------------------------------------------------
    @staticmethod
    def investigation_key(investigation_id: str) -> str:
        return keys.investigation(investigation_id)

    @staticmethod
    def step_key(investigation_id: str, step: int) -> str:
        return keys.step(investigation_id, step)

    @staticmethod
    def progress_key(investigation_id: str) -> str:
        return keys.progress(investigation_id)

    def ping(self) -> None:
        with _clear_errors(self.url):
            self.client.ping()

    # investigations ---------------------------------------------------------------------
    def create(self, investigation: Investigation) -> StoredInvestigation:
        key = self.investigation_key(investigation.id)
        with _clear_errors(self.url), self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "data", investigation.model_dump_json())
            pipe.hsetnx(key, "version", 1)
            pipe.expire(key, self.ttl_s)
            created, _, _ = pipe.execute()
        if not created:
            raise VersionConflict(f"investigation {investigation.id} already exists")
        return StoredInvestigation(version=1, investigation=investigation)

    @classmethod
    def origin_key(cls, investigation_id: str) -> str:
        """Who asked for the investigation (`slack:<user>`, `cli:<login>`)."""
        return keys.origin(investigation_id)

    def start(self, investigation: Investigation, *, asked_by: str, watch_at: float) -> None:
        """`create`, who asked, and `watch`, in one round trip (one MULTI): starting an
        investigation is on the path of Slack's 3-second ack."""
        key = self.investigation_key(investigation.id)
        with _clear_errors(self.url), self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "data", investigation.model_dump_json())
            pipe.hsetnx(key, "version", 1)
            pipe.expire(key, self.ttl_s)
            pipe.set(self.origin_key(investigation.id), asked_by, nx=True, ex=self.ttl_s)
            pipe.zadd(WATCHDOG_KEY, {investigation.id: watch_at})
            created = pipe.execute()[0]
        if not created:
            raise VersionConflict(f"investigation {investigation.id} already exists")

    def load(self, investigation_id: str) -> StoredInvestigation:
        key = self.investigation_key(investigation_id)
        with _clear_errors(self.url):
            raw = cast(dict[str, str], self.client.hgetall(key))
        if not raw or "data" not in raw:
            raise InvestigationNotFound(
                f"investigation {investigation_id} is not in Redis at {self.url}: it expired "
                "(BPFSLEUTH_STATE_TTL_S), never existed, or Redis restarted without persistence"
            )
        return StoredInvestigation(
            version=int(raw.get("version", "1")),
            investigation=Investigation.model_validate_json(raw["data"]),
        )

    def save(self, stored: StoredInvestigation) -> StoredInvestigation:
        """Write `stored.investigation` if nobody wrote since `stored.version` was read."""
        key = self.investigation_key(stored.investigation.id)
        stored.investigation.touch()
        data = stored.investigation.model_dump_json()
        with _clear_errors(self.url), self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                current = pipe.hget(key, "version")
                if current is None:
                    raise InvestigationNotFound(
                        f"investigation {stored.investigation.id} vanished from Redis"
                    )
                current_version = int(cast(str, current))
                if current_version != stored.version:
                    raise VersionConflict(
                        f"investigation {stored.investigation.id} is at version {current_version}, "
                        f"this write was based on {stored.version}"
                    )
                pipe.multi()
                pipe.hset(key, mapping={"data": data, "version": stored.version + 1})
                pipe.expire(key, self.ttl_s)
                pipe.execute()
            except redis.exceptions.WatchError as exc:
                raise VersionConflict(
                    f"investigation {stored.investigation.id} changed during the write"
                ) from exc
        return StoredInvestigation(version=stored.version + 1, investigation=stored.investigation)

    # steps --------------------------------------------------------------------------------
    def open_step(self, meta: StepMeta) -> bool:
        """Create the step's join record; False when it exists (a redelivered advance)."""
        key = self.step_key(meta.investigation_id, meta.step)
        hosts = set(meta.hosts)
        if len(hosts) != len(meta.hosts):
            raise ValueError(f"step {meta.step} names a host twice: {meta.hosts}")
        with _clear_errors(self.url), self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "meta", meta.model_dump_json())
            pipe.hsetnx(key, "expected", len(hosts))
            pipe.expire(key, self.ttl_s)
            created, _, _ = pipe.execute()
        return bool(created)

    def step_meta(self, investigation_id: str, step: int) -> StepMeta | None:
        with _clear_errors(self.url):
            raw = self.client.hget(self.step_key(investigation_id, step), "meta")
        return StepMeta.model_validate_json(cast(str, raw)) if raw else None

    def mark_dispatched(self, meta: StepMeta) -> None:
        meta = meta.model_copy(update={"dispatched": True})
        with _clear_errors(self.url):
            self.client.hset(
                self.step_key(meta.investigation_id, meta.step), "meta", meta.model_dump_json()
            )

    def step_state(self, investigation_id: str, step: int, host: str) -> str:
        """`missing` (no such step), `closed`, `done` (this host answered) or `open`."""
        key = self.step_key(investigation_id, step)
        with _clear_errors(self.url), self.client.pipeline(transaction=False) as pipe:
            pipe.hexists(key, "meta")
            pipe.hexists(key, "closed")
            pipe.hexists(key, f"result:{host}")
            has_meta, closed, answered = pipe.execute()
        if not has_meta:
            return "missing"
        if closed:
            return "closed"
        return "done" if answered else "open"

    def claim_host_run(self, investigation_id: str, step: int, host: str, by: str) -> bool:
        """Only one run of a step per host, even if its run_plan was sent twice."""
        with _clear_errors(self.url):
            return bool(
                self.client.hsetnx(self.step_key(investigation_id, step), f"claimed:{host}", by)
            )

    def record_result(self, investigation_id: str, result: PlanResult) -> int:
        """Store one host's result; 1 means this result completed the step (see the Lua)."""
        key = self.step_key(investigation_id, result.step)
        with _clear_errors(self.url):
            return int(
                cast(
                    int,
                    self._record_result(
                        keys=[key], args=[result.host, result.model_dump_json(), self.ttl_s]
                    ),
                )
            )

    def close_at_deadline(self, investigation_id: str, step: int) -> bool:
        """Close the step if no result closed it first; True when this call closed it."""
        with _clear_errors(self.url):
            closed = int(
                cast(int, self._close_at_deadline(keys=[self.step_key(investigation_id, step)]))
            )
        return closed == 1

    def schedule_deadline(self, investigation_id: str, step: int, at: float) -> None:
        """Close step `step` at Unix time `at` unless every host has answered by then."""
        with _clear_errors(self.url):
            self.client.zadd(DEADLINES_KEY, {keys.deadline_member(investigation_id, step): at})

    def claim_due_deadlines(
        self, now: float, *, lease_s: float = 30.0, stale_s: float = 360.0, limit: int = 100
    ) -> list[tuple[str, int]]:
        """Steps past their deadline that need an advance now (see the Lua above)."""
        prefix = keys.INVESTIGATION_PREFIX
        with _clear_errors(self.url):
            members = cast(
                list[str],
                self._claim_deadlines(
                    keys=[DEADLINES_KEY], args=[now, lease_s, limit, prefix, stale_s]
                ),
            )
        out = []
        for member in members:
            investigation_id, _, step = member.rpartition(":")
            out.append((investigation_id, int(step)))
        return out

    def watch(self, investigation_id: str, at: float) -> None:
        """Look at this investigation at Unix time `at` (and then periodically) until done."""
        with _clear_errors(self.url):
            self.client.zadd(WATCHDOG_KEY, {investigation_id: at})

    def unwatch(self, investigation_id: str) -> None:
        with _clear_errors(self.url):
            self.client.zrem(WATCHDOG_KEY, investigation_id)

    def claim_watched(self, now: float, recheck_s: float, limit: int = 100) -> list[str]:
        """Investigations due for a look; each is pushed `recheck_s` into the future."""
        with _clear_errors(self.url):
            return cast(
                list[str], self._claim_watchdog(keys=[WATCHDOG_KEY], args=[now, recheck_s, limit])
            )

    def mark_advanced(self, investigation_id: str, step: int, at: float) -> None:
        """The advance that records this closed step was enqueued at Unix time `at`."""
        with _clear_errors(self.url):
            self.client.hset(self.step_key(investigation_id, step), "advanced", at)

    def mark_recorded(self, investigation_id: str, step: int) -> None:
        """This step's results are in the stored investigation."""
        with _clear_errors(self.url):
            self.client.hset(self.step_key(investigation_id, step), "recorded", 1)

    def forget_deadline(self, investigation_id: str, step: int) -> None:
        with _clear_errors(self.url):
            self.client.zrem(DEADLINES_KEY, keys.deadline_member(investigation_id, step))

    def step_outcome(self, investigation_id: str, step: int) -> StepOutcome | None:
        """The results of a closed step, a note-only result for each host that did not answer."""
        key = self.step_key(investigation_id, step)
        with _clear_errors(self.url):
            raw = cast(dict[str, str], self.client.hgetall(key))
        if "meta" not in raw or "closed" not in raw:
            return None
        meta = StepMeta.model_validate_json(raw["meta"])
        results: list[PlanResult] = []
        missing: list[str] = []
        for host in meta.hosts:
            stored = raw.get(f"result:{host}")
            if stored is not None:
                results.append(PlanResult.model_validate_json(stored))
                continue
            missing.append(host)
            results.append(
                PlanResult(
                    host=host,
                    step=step,
                    notes=[
                        f"host {host} did not answer within {meta.deadline_s:.0f} s; "
                        "its results for this step are missing"
                    ],
                    finished_at=datetime.now(UTC),
                )
            )
        return StepOutcome(
            step=step,
            closed=cast(CloseReason, raw["closed"]),
            results=results,
            missing_hosts=missing,
        )

    # progress -----------------------------------------------------------------------------
    def publish(self, event: ProgressEvent) -> str:
        key = self.progress_key(event.investigation_id)
        payload = _EVENT_ADAPTER.dump_json(event).decode()
        with _clear_errors(self.url), self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"event": payload}, maxlen=PROGRESS_MAXLEN, approximate=True)
            pipe.expire(key, self.ttl_s)
            entry_id, _ = pipe.execute()
        return str(entry_id)

    def read_progress(
        self, investigation_id: str, after: str = "0-0", *, block_ms: int | None = None
    ) -> list[tuple[str, ProgressEvent]]:
        """Events after stream id `after` (waiting up to `block_ms` for the first one)."""
        key = self.progress_key(investigation_id)
        with _clear_errors(self.url):
            reply = cast(
                list[Any], self.client.xread({key: after}, count=500, block=block_ms) or []
            )
        events: list[tuple[str, ProgressEvent]] = []
        for _stream, entries in reply:
            for entry_id, fields in entries:
                events.append((entry_id, _EVENT_ADAPTER.validate_json(fields["event"])))
        return events

    # audit --------------------------------------------------------------------------------
    def audit(self, *entries: AuditEntry) -> None:
        """Append entries to the audit stream (one round trip)."""
        if not entries:
            return
        with _clear_errors(self.url), self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                fields = {
                    name: "" if value is None else str(value)
                    for name, value in json.loads(entry.model_dump_json()).items()
                }
                pipe.xadd(AUDIT_STREAM, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            pipe.execute()

    def audit_entries(self, count: int = 1000) -> list[AuditEntry]:
        with _clear_errors(self.url):
            entries = cast(list[Any], self.client.xrange(AUDIT_STREAM, count=count))
        out = []
        for _entry_id, fields in entries:
            values: dict[str, Any] = dict(fields)
            if values.get("exit_code") == "":
                values["exit_code"] = None
            out.append(AuditEntry.model_validate(values))
        return out


def now_s() -> float:
    return time.time()
