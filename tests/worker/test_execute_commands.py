"""A step's commands: the ones the policy allows run a few at a time, results in the plan's order;
one that needs an approval is asked afterwards, in order (real commands, real sandbox)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from worker.host.approver import ApprovalDecision, ApprovalRequest
from worker.host.execute import ExecutionContext, execute_plan
from worker.loop.events import CommandFinished, ProgressEvent
from worker.loop.investigation import StepPlan
from worker.protocol import CommandRequest


class Recorder:
    def __init__(self) -> None:
        self.asked: list[tuple[str, float]] = []

    def decide(self, request: ApprovalRequest) -> ApprovalDecision:
        self.asked.append((request.command_id, time.monotonic()))
        return ApprovalDecision(approved=False, by="test", note="no")


def test_allowed_commands_overlap_and_come_back_in_the_plans_order(tmp_path: Path) -> None:
    marker = tmp_path / f"tail-{uuid.uuid4().hex}"
    marker.write_text("x\n")
    commands = [
        CommandRequest(id="first", command="pidstat -u 1 1"),
        CommandRequest(id="asks", command=f"tail -f {marker}"),  # needs an approval
        CommandRequest(id="second", command="pidstat -u 1 1"),
        CommandRequest(id="third", command="pidstat -u 1 1"),
        CommandRequest(id="quick", command="uptime"),
    ]
    plan = StepPlan(investigation_id="i", step=1, commands=commands)
    approver, events = Recorder(), []

    def sink(event: ProgressEvent) -> None:
        events.append((event, time.monotonic()))

    started = time.monotonic()
    result = execute_plan(plan, "h", ExecutionContext(approver=approver, on_event=sink))
    elapsed = time.monotonic() - started

    assert list(result.command_results) == ["first", "asks", "second", "third", "quick"]
    ran = [result.command_results[i] for i in ("first", "second", "third")]
    assert all(c.ran and c.exit_code == 0 and "Average" in c.stdout for c in ran)
    # three one-second commands at once: well under their sum (sequential takes >= 3 s)
    assert sum(c.duration_s for c in ran) >= 3.0
    assert elapsed < 0.8 * sum(c.duration_s for c in ran)
    assert not result.command_results["asks"].ran
    # the approval is asked once, after every allowed command finished
    assert [a[0] for a in approver.asked] == ["asks"]
    finished = [at for event, at in events if isinstance(event, CommandFinished)]
    assert approver.asked[0][1] >= sorted(finished)[3]
