"""The Redis store against a real redis-server: versions, TTLs, the step join, streams."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import RedisServer
from worker.distributed.store import (
    AuditEntry,
    InvestigationNotFound,
    StepMeta,
    Store,
    StoreUnavailable,
    VersionConflict,
)
from worker.loop.events import Notice, ResolutionReached
from worker.loop.investigation import Investigation
from worker.protocol import PlanResult, Resolution

pytestmark = pytest.mark.redis
TTL_S = 3600


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Store]:
    store = Store(redis_server.url, ttl_s=TTL_S)
    store.client.flushdb()
    yield store
    store.client.close()


def _meta(inv_id: str, step: int, hosts: list[str]) -> StepMeta:
    return StepMeta(investigation_id=inv_id, step=step, hosts=hosts, deadline_s=30, deadline_at=0.0)


def test_investigation_round_trips_with_a_version_and_the_configured_ttl(store: Store) -> None:
    inv = Investigation(symptom="app cannot reach the database", hosts=["web-1", "db-1"])
    store.create(inv)
    loaded = store.load(inv.id)
    assert loaded.version == 1
    assert loaded.investigation.symptom == inv.symptom
    assert loaded.investigation.hosts == ["web-1", "db-1"]
    loaded.investigation.stop_reason = "changed"
    saved = store.save(loaded)
    assert saved.version == 2
    assert store.load(inv.id).investigation.stop_reason == "changed"
    ttl = store.client.ttl(store.investigation_key(inv.id))
    assert TTL_S - 5 < ttl <= TTL_S


def test_a_write_based_on_an_old_version_is_refused(store: Store) -> None:
    inv = Investigation(symptom="slow disk", hosts=["a"])
    store.create(inv)
    first = store.load(inv.id)
    second = store.load(inv.id)
    store.save(first)
    with pytest.raises(VersionConflict, match="version 2"):
        store.save(second)
    with pytest.raises(VersionConflict, match="already exists"):
        store.create(inv)


def test_a_missing_investigation_says_why_it_may_be_gone(store: Store) -> None:
    with pytest.raises(InvestigationNotFound, match=r"expired .* or Redis restarted"):
        store.load("nope")


def test_all_hosts_answering_closes_the_step_once_and_refuses_duplicates(store: Store) -> None:
    assert store.open_step(_meta("i1", 1, ["a", "b"]))
    assert not store.open_step(_meta("i1", 1, ["a", "b"]))  # a redelivered advance
    assert store.step_state("i1", 1, "a") == "open"
    assert store.record_result("i1", PlanResult(host="a", step=1)) == 0
    assert store.step_state("i1", 1, "a") == "done"
    assert store.record_result("i1", PlanResult(host="a", step=1)) == -2
    assert store.record_result("i1", PlanResult(host="b", step=1)) == 1
    assert store.step_state("i1", 1, "b") == "closed"
    assert not store.close_at_deadline("i1", 1)
    outcome = store.step_outcome("i1", 1)
    assert outcome is not None and outcome.closed == "complete"
    assert [r.host for r in outcome.results] == ["a", "b"]
    assert outcome.missing_hosts == []


def test_the_deadline_closes_the_step_and_names_the_silent_host(store: Store) -> None:
    store.open_step(_meta("i2", 3, ["a", "b"]))
    assert store.step_outcome("i2", 3) is None  # open: nothing to record yet
    store.record_result("i2", PlanResult(host="a", step=3, notes=["from a"]))
    assert store.close_at_deadline("i2", 3)
    assert not store.close_at_deadline("i2", 3)
    assert store.record_result("i2", PlanResult(host="b", step=3)) == -1  # too late
    outcome = store.step_outcome("i2", 3)
    assert outcome is not None and outcome.closed == "deadline"
    assert outcome.missing_hosts == ["b"]
    by_host = {r.host: r for r in outcome.results}
    assert by_host["a"].notes == ["from a"]
    assert "host b did not answer within 30 s" in by_host["b"].notes[0]


def test_a_step_runs_once_per_host_even_when_sent_twice(store: Store) -> None:
    store.open_step(_meta("c1", 1, ["a", "b"]))
    assert store.claim_host_run("c1", 1, "a", by="worker-1")
    assert not store.claim_host_run("c1", 1, "a", by="worker-2")
    assert store.claim_host_run("c1", 1, "b", by="worker-2")


def test_a_result_for_an_unknown_step_is_not_stored(store: Store) -> None:
    assert store.record_result("ghost", PlanResult(host="a", step=1)) == -3
    assert store.step_state("ghost", 1, "a") == "missing"


def test_exactly_one_of_many_racing_writers_closes_the_step(store: Store) -> None:
    hosts = [f"h{i}" for i in range(16)]
    for round_ in range(20):
        store.open_step(_meta("race", round_, hosts))
        closers: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(hosts) + 1)

        def host_writes(host: str, step: int = round_) -> None:
            own = Store(store.url, ttl_s=TTL_S)
            barrier.wait()
            if own.record_result("race", PlanResult(host=host, step=step)) == 1:
                with lock:
                    closers.append(host)

        def deadline(step: int = round_) -> None:
            own = Store(store.url, ttl_s=TTL_S)
            barrier.wait()
            if own.close_at_deadline("race", step):
                with lock:
                    closers.append("deadline")

        threads = [threading.Thread(target=host_writes, args=(h,)) for h in hosts]
        threads.append(threading.Thread(target=deadline))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(closers) == 1, closers


def test_progress_events_come_back_in_order_and_typed(store: Store) -> None:
    store.publish(Notice(investigation_id="p1", step=1, message="first"))
    resolution = Resolution(root_cause="dns", resolution_plan="fix it", confidence="High")
    store.publish(ResolutionReached(investigation_id="p1", resolution=resolution, source="model"))
    events = store.read_progress("p1")
    assert [type(e).__name__ for _, e in events] == ["Notice", "ResolutionReached"]
    last_id = events[-1][0]
    assert store.read_progress("p1", last_id, block_ms=50) == []
    assert store.client.ttl(store.progress_key("p1")) > 0


def test_audit_entries_keep_who_asked_and_what_ran(store: Store) -> None:
    store.audit(
        AuditEntry(
            investigation_id="a1",
            step=1,
            host="web-1",
            kind="command",
            id="ports",
            argv="ss -tlnp",
            verdict="allow",
            ran=True,
            exit_code=0,
            duration_s=0.01,
            asked_by="cli:root",
            approved_by="policy",
        )
    )
    (entry,) = store.audit_entries()
    assert (entry.host, entry.argv, entry.exit_code, entry.asked_by) == (
        "web-1",
        "ss -tlnp",
        0,
        "cli:root",
    )


def test_an_unreachable_redis_is_a_clear_error() -> None:
    from tests.support.ports import free_port

    store = Store(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60)
    with pytest.raises(StoreUnavailable, match="not reachable"):
        store.load("x")
    with pytest.raises(StoreUnavailable):
        store.ping()
    assert isinstance(store.client, redis.Redis)


def test_due_deadlines_close_open_steps_and_rescue_lost_advances(store: Store) -> None:
    store.open_step(_meta("d1", 1, ["a"]))  # open at its deadline: closed and claimed
    store.open_step(_meta("d1", 2, ["a"]))  # completed and recorded before its deadline
    store.record_result("d1", PlanResult(host="a", step=2))
    store.mark_advanced("d1", 2, at=50.0)
    store.mark_recorded("d1", 2)
    store.open_step(_meta("d1", 3, ["a"]))  # completed, its advance sent but never recorded
    store.record_result("d1", PlanResult(host="a", step=3))
    store.mark_advanced("d1", 3, at=90.0)
    store.open_step(_meta("d1", 4, ["a"]))  # deadline still ahead: untouched
    for step, at in ((1, 100.0), (2, 100.0), (3, 100.0), (4, 500.0)):
        store.schedule_deadline("d1", step, at)
    store.schedule_deadline("gone", 1, 100.0)  # its state expired: dropped
    assert store.claim_due_deadlines(now=200.0, lease_s=30, stale_s=360) == [("d1", 1)]
    assert store.step_state("d1", 1, "a") == "closed"
    assert store.record_result("d1", PlanResult(host="a", step=1)) == -1
    # leased, not forgotten: a scanner that died before advancing is covered after the lease
    assert store.claim_due_deadlines(now=210.0, lease_s=30, stale_s=360) == []
    assert store.claim_due_deadlines(now=231.0, lease_s=30, stale_s=360) == [("d1", 1)]
    store.mark_advanced("d1", 1, at=231.0)
    store.forget_deadline("d1", 1)
    # step 3's advance, sent at 90 s, is taken for lost once older than stale_s
    assert store.claim_due_deadlines(now=449.0, stale_s=360) == []
    assert store.claim_due_deadlines(now=451.0, stale_s=360) == [("d1", 3)]
    store.mark_advanced("d1", 3, at=451.0)
    store.forget_deadline("d1", 3)
    assert store.step_state("d1", 4, "a") == "open"
    assert store.claim_due_deadlines(now=600.0, stale_s=360) == [("d1", 4)]
    assert store.client.zscore("bpfsleuth:deadlines", "d1:2") is None
