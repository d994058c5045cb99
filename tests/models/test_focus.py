"""The planner looks at the process the symptom names when nothing found is about it (fast, no
kernel): a service asleep on a contended mutex uses no CPU, so the triage shows only another
process's CPU use; the planner lists the host's process names, then runs the lock and syscall
probes filtered to the named service's comm, and concludes with the service's lock contention.
A strong finding, or one about the named service, needs no such step. Names and figures are
drawn at random on each run."""

from __future__ import annotations

import random

from probes.models import Aggregates, TopEntry
from tests.models.test_relevance import evidence, pid, service
from worker.backends.base import Evidence, PriorExchange
from worker.backends.offline.focus import NAMES_ID
from worker.backends.offline.planner import plan_next
from worker.backends.offline.runbooks import TRIAGE
from worker.protocol import CommandResult, Diagnostic, EbpfResult, PlanResult, Resolution

PROBES = {"lock_contention", "syscall_errors", "runq_latency", "cpu_profile", "process_exits"}


def busy(comm: str, p: int) -> EbpfResult:
    """An unrelated process at 60-90% of a CPU with a little run-queue wait behind it."""
    pct = random.uniform(60, 90)
    return EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        duration_s=3.0,
        summary=f"runq waits; on CPU: {comm} (pid {p}) {pct:.0f}%",
        aggregates=Aggregates(
            top={
                "on_cpu": [
                    TopEntry(
                        key=f"{comm} (pid {p})",
                        count=500,
                        value=pct * 30,
                        labels={"pid": p, "cpu_pct": round(pct, 1)},
                    )
                ],
            },
        ),
    )


def contention(comm: str, p: int, name: str) -> EbpfResult:
    waits = random.randint(1500, 6000)
    return EbpfResult(
        program_name=name,
        probe="lock_contention",
        duration_s=3.0,
        summary=f"Lock waits in 3.0s: top waiter {comm} (pid {p}) waited in {waits} waits",
        aggregates=Aggregates(
            totals={"futex_waits": waits},
            top={
                "processes": [
                    TopEntry(
                        key=f"{comm} (pid {p})",
                        count=waits,
                        value=random.uniform(2500, 9000),
                        labels={"pid": p, "comm": comm, "p99_ms": 5.1},
                    )
                ],
                "futex_waiters": [
                    TopEntry(
                        key=f"{comm} (pid {p}) futex 0x55aa10 wait",
                        count=waits,
                        labels={"pid": p, "comm": comm, "op": "wait"},
                    )
                ],
            },
        ),
    )


def with_step(shown: Evidence, step: int, *runs: EbpfResult, **commands: str) -> Evidence:
    result = PlanResult(
        host="web-1",
        step=step,
        ebpf_results={run.program_name: run for run in runs},
        command_results={
            k: CommandResult(id=k, command=k, verdict="allow", ran=True, stdout=v)
            for k, v in commands.items()
        },
    )
    return shown.model_copy(update={"results": [*shown.results, result], "step": step})


def test_a_quiet_named_service_is_looked_at_and_its_lock_contention_found() -> None:
    comm, word = service()
    hog, _ = service()
    p, q = pid(), pid()
    symptom = (
        f"{word} {random.choice(['throughput dropped to nothing but CPU is idle', 'seems wedged'])}"
    )
    shown = evidence(symptom, busy(hog, q))
    history = [PriorExchange(prompt="", reply=Diagnostic(commands=[TRIAGE[0]]))]
    step2 = plan_next(shown, history, PROBES, final=False)
    assert isinstance(step2, Diagnostic)
    assert NAMES_ID in {c.id for c in step2.commands}  # who is on the host at all?

    history.append(PriorExchange(prompt="", reply=step2))
    names = "COMMAND\n" + "\n".join(sorted({"bash", "sshd", comm, hog, "systemd"})) + "\n"
    shown = with_step(shown, 2, **{NAMES_ID: names})
    step3 = plan_next(shown, history, PROBES, final=False)
    assert isinstance(step3, Diagnostic)
    focused = {p.target: p for p in step3.ebpf_programs if p.filters.comm == comm}
    assert {"lock_contention", "syscall_errors"} <= set(focused)
    assert any(f"-C {comm}" in c.command for c in step3.commands)

    history.append(PriorExchange(prompt="", reply=step3))
    shown = with_step(shown, 3, contention(comm, p, focused["lock_contention"].name))
    answer = plan_next(shown, history, PROBES, final=True)
    assert isinstance(answer, Resolution)
    assert f"{comm} (pid {p})" in answer.root_cause and answer.confidence in {"High", "Medium"}


def test_no_focus_when_the_best_finding_is_about_the_named_service() -> None:
    comm, word = service()
    p = pid()
    shown = evidence(f"{word} workers are stuck", contention(comm, p, "lock_contention"))
    history = [PriorExchange(prompt="", reply=Diagnostic(commands=[TRIAGE[0]]))]
    step2 = plan_next(shown, history, PROBES, final=False)
    requested = (
        {c.id for c in step2.commands} | {x.name for x in step2.ebpf_programs}
        if isinstance(step2, Diagnostic)
        else set()
    )
    assert NAMES_ID not in requested and not any(r.startswith("focus_") for r in requested)
