"""The host's approver against a real Redis: it reads the decision the bot writes, gives up after
its wait (and closes the question so a late click cannot count), and shares one budget across a
step's requests."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.support.redis_server import RedisServer
from worker.host.approver import ApprovalRequest
from worker.host.approver_redis import RedisApprover, StoredDecision, approval_key

pytestmark = [pytest.mark.redis]


def _request(command_id: str, investigation_id: str = "inv1") -> ApprovalRequest:
    return ApprovalRequest(
        investigation_id=investigation_id,
        step=1,
        host="alpha",
        command_id=command_id,
        command="git --version",
    )


def _bot_decides(client: redis.Redis, command_id: str, *, approved: bool, after_s: float) -> None:
    """What bot.gateway.record_decision writes, a moment after the host started waiting."""

    def write() -> None:
        time.sleep(after_s)
        record = StoredDecision(approved=approved, by="slack:U0BOB", at=time.time())
        client.set(approval_key("inv1", command_id), record.model_dump_json(), nx=True)

    threading.Thread(target=write, daemon=True).start()


def test_a_decision_written_while_the_host_waits_is_the_answer(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    approver = RedisApprover(client, wait_s=20, poll_s=0.05)
    _bot_decides(client, "yes", approved=True, after_s=0.3)
    answer = approver.decide(_request("yes"))
    assert answer.approved and answer.by == "slack:U0BOB"
    _bot_decides(client, "no", approved=False, after_s=0.3)
    answer = approver.decide(_request("no"))
    assert not answer.approved and answer.by == "slack:U0BOB"


def test_no_decision_denies_after_the_wait_and_a_late_click_cannot_count(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    answer = RedisApprover(client, wait_s=1, poll_s=0.05).decide(_request("late"))
    assert not answer.approved and answer.note == "no decision within 1 s"
    late = StoredDecision(approved=True, by="slack:U0BOB", at=time.time()).model_dump_json()
    assert not client.set(approval_key("inv1", "late"), late, nx=True)


def test_one_budget_bounds_all_requests_of_a_step(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    approver = RedisApprover(client, wait_s=30, budget_s=1, poll_s=0.05)
    first = approver.decide(_request("a", "inv2"))
    second = approver.decide(_request("b", "inv2"))
    assert not first.approved and not second.approved
    assert "this step's time for approvals ran out" in first.note
    assert second.note.startswith("no decision within 0 s")
