"""The loop's progress events folded into what the thread shows, and what to do in Slack."""

from __future__ import annotations

import time

from bot.progress.state import ThreadRender, apply, next_update_at
from worker.loop.events import (
    CommandFinished,
    CommandVerdict,
    Findings,
    Notice,
    ProbeFinished,
    ProbeRefused,
    ProbeStarted,
    ResolutionReached,
    StepStarted,
)
from worker.protocol import CommandRequest, EbpfProgramRequest, Resolution, Verdict

HOSTS = ["web-1", "web-2"]


def _apply(render: ThreadRender, event: object, started_at: float = 0.0) -> list[str]:
    effects = apply(render, event, hosts=HOSTS, started_at=started_at, approval_timeout_s=60)  # type: ignore[arg-type]
    return [e.kind for e in effects]


def _step(step: int = 1) -> StepStarted:
    return StepStarted(
        investigation_id="inv",
        step=step,
        reasoning="check the ports",
        commands=[
            CommandRequest(id="ss", command="ss -tlnp"),
            CommandRequest(id="dump", command="tcpdump -c 5"),
        ],
        ebpf_programs=[
            EbpfProgramRequest(name="conn", type="kprobe", target="tcp_connect", duration=5)
        ],
    )


def _verdict(
    id: str = "dump",
    command: str = "tcpdump",
    verdict: Verdict = "needs_approval",
    *,
    host: str = "web-1",
    reason: str = "",
) -> CommandVerdict:
    return CommandVerdict(
        investigation_id="inv",
        step=1,
        host=host,
        id=id,
        command=command,
        verdict=verdict,
        reason=reason,
    )


def _finished(id: str, *, host: str = "web-1", **result: object) -> CommandFinished:
    return CommandFinished(investigation_id="inv", step=1, host=host, id=id, **result)


def test_a_step_is_posted_with_its_plan() -> None:
    render = ThreadRender(investigation_id="inv")
    assert _apply(render, _step()) == ["post_step"]
    view = render.steps[1].view
    assert view.reasoning == "check the ports"
    assert [(c.id, c.command, c.verdict) for c in view.commands] == [
        ("ss", "ss -tlnp", None),
        ("dump", "tcpdump -c 5", None),
    ]
    assert [(p.name, p.requested, p.duration_s) for p in view.probes] == [
        ("conn", "kprobe:tcp_connect", 5)
    ]


def test_results_from_two_hosts_land_in_rows_per_host() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step())
    for host, code in (("web-1", 0), ("web-2", 1)):
        assert _apply(
            render,
            _verdict("ss", "ss -tlnp", "allow", host=host),
        ) == ["update_step"]
        _apply(
            render,
            _finished("ss", host=host, ran=True, exit_code=code, duration_s=0.2),
        )
    rows = [(c.host, c.exit_code) for c in render.steps[1].view.commands if c.id == "ss"]
    assert rows == [("web-1", 0), ("web-2", 1)]
    assert render.steps[1].dirty


def test_a_command_needing_approval_posts_a_request_that_expires_when_the_command_ends() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step())
    effects = apply(
        render,
        _verdict(command="tcpdump -c 5", reason="captures packets"),
        hosts=HOSTS,
        started_at=0,
        approval_timeout_s=60,
    )
    assert [e.kind for e in effects] == ["post_approval", "update_step"]
    approval = effects[0].approval
    assert approval is not None
    assert (approval.command_id, approval.host, approval.reason, approval.timeout_s) == (
        "dump",
        "web-1",
        "captures packets",
        60,
    )
    finished = _apply(
        render,
        _finished("dump", ran=False, note="denied by slack:U0BOB"),
    )
    assert finished == ["expire_approval", "update_step"]
    assert render.pending_approvals == []


def test_probe_progress_from_start_to_result() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step())
    ends = time.time() + 5
    _apply(
        render,
        ProbeStarted(
            investigation_id="inv",
            step=1,
            host="web-1",
            name="conn",
            probe="tcp_connect",
            requested="kprobe:tcp_connect",
            attach_points=["sock:inet_sock_set_state"],
            duration_s=5,
            ends_at=ends,
        ),
    )
    probe = render.steps[1].view.probes[0]
    assert (probe.host, probe.probe, probe.attach_points, probe.ends_at) == (
        "web-1",
        "tcp_connect",
        ["sock:inet_sock_set_state"],
        ends,
    )
    _apply(
        render,
        ProbeFinished(
            investigation_id="inv",
            step=1,
            host="web-1",
            name="conn",
            event_count=12,
            summary="12 connects, 3 refused",
        ),
    )
    assert (probe.finished, probe.event_count, probe.summary, probe.ends_at) == (
        True,
        12,
        "12 connects, 3 refused",
        None,
    )
    _apply(
        render,
        ProbeRefused(
            investigation_id="inv",
            step=1,
            host="web-2",
            name="conn",
            requested="kprobe:tcp_connect",
            reason="no kprobes",
        ),
    )
    refused = [p for p in render.steps[1].view.probes if p.host == "web-2"]
    assert refused and refused[0].refused and refused[0].error == "no kprobes"


def test_findings_name_their_host_when_there_are_several() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step())
    _apply(render, Findings(investigation_id="inv", step=1, host="web-2", lines=["ss: exit 0"]))
    assert render.steps[1].view.findings == ["web-2: ss: exit 0"]


def test_the_next_step_closes_the_previous_one_and_expires_its_open_approvals() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step(1))
    _apply(render, _verdict())
    assert _apply(render, _step(2)) == ["close_step", "expire_approval", "post_step"]
    assert render.steps[1].closed and not render.steps[2].closed


def test_a_resolution_closes_the_step_and_posts_the_card_with_what_it_took() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step(1))
    started = time.time() - 42
    effects = apply(
        render,
        ResolutionReached(
            investigation_id="inv",
            step=2,
            resolution=Resolution(root_cause="dns", resolution_plan="1. fix", confidence="Low"),
            source="synthesised",
            stop_reason="budget",
        ),
        hosts=HOSTS,
        started_at=started,
    )
    assert [e.kind for e in effects] == ["close_step", "post_resolution"]
    card = effects[1].resolution
    assert card is not None
    assert (card.root_cause, card.confidence, card.hosts, card.iterations) == (
        "dns",
        "Low",
        HOSTS,
        2,
    )
    assert card.synthesised and card.stop_reason == "budget"
    assert 41 <= card.duration_s <= 60


def test_a_notice_before_any_step_is_posted_on_its_own() -> None:
    render = ThreadRender(investigation_id="inv")
    effects = apply(
        render,
        Notice(investigation_id="inv", step=0, message="host down"),
        hosts=HOSTS,
        started_at=0,
    )
    assert [(e.kind, e.text) for e in effects] == [("post_notice", "host down")]


def test_the_render_state_survives_a_round_trip_through_json() -> None:
    render = ThreadRender(investigation_id="inv", cursor="5-0")
    _apply(render, _step())
    again = ThreadRender.model_validate_json(render.model_dump_json())
    assert again == render
    assert 1 in again.steps


def test_replaying_events_after_a_restart_posts_nothing_twice() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step(1))
    render.steps[1].ts = "100.000001"  # the consumer posted it, then died before the cursor
    verdict = _verdict()
    assert _apply(render, verdict) == ["post_approval", "update_step"]
    assert _apply(render, _step(1)) == ["update_step"]
    assert render.steps[1].ts == "100.000001"
    assert _apply(render, verdict) == ["update_step"]
    done = ResolutionReached(
        investigation_id="inv",
        step=2,
        resolution=Resolution(root_cause="x", resolution_plan="y", confidence="High"),
        source="model",
    )
    assert "post_resolution" in _apply(render, done)
    render.resolved_steps.append(2)
    assert "post_resolution" not in _apply(render, done)


def test_updates_are_throttled_and_a_tracing_probe_keeps_its_countdown_moving() -> None:
    render = ThreadRender(investigation_id="inv")
    _apply(render, _step())
    message = render.steps[1]
    assert next_update_at(message, 1.0, 5.0, now=100.0) is None  # not posted yet
    message.ts, message.last_update, message.dirty = "1.1", 100.0, False
    assert next_update_at(message, 1.0, 5.0, now=100.5) is None  # nothing changed
    message.dirty = True
    assert next_update_at(message, 1.0, 5.0, now=100.5) == 101.0  # at most once a second
    message.dirty = False
    message.view.probes[0].ends_at = 130.0  # tracing until t=130
    assert next_update_at(message, 1.0, 5.0, now=102.0) == 105.0
    assert next_update_at(message, 1.0, 5.0, now=131.0) is None  # trace over, no change
    message.closed = True
    message.dirty = True
    assert next_update_at(message, 1.0, 5.0, now=102.0) is None
