"""The resolver on every request form of the seeds, checked against the installed catalog."""

from __future__ import annotations

import pytest

from probes.catalog import load_catalog
from probes.engine.plan import plan_attach
from probes.params import validate_params
from probes.requests import ProbeAsk, request_key
from probes.resolver import resolve, resolve_key, resolve_target, to_probe_request

# (type, target as the model writes it, probe that must answer it here)
SEED_FORMS = [
    ("kprobe", "tcp_connect", "tcp_connect"),
    ("kprobe", "kprobe:tcp_connect", "tcp_connect"),
    ("tracepoint", "syscalls/sys_enter_connect", "tcp_connect"),
    ("tracepoint", "syscalls:sys_enter_connect", "tcp_connect"),
    ("kprobe", "tcp_sendmsg", "tcp_retransmits"),
    ("tracepoint", "syscalls/sys_enter_execve", "exec"),
    ("tracepoint", "sched/sched_process_exit", "exec"),
    ("kprobe", "do_fork", "exec"),
    ("tracepoint", "syscalls/sys_enter_openat", "file_opens"),
    ("kprobe", "vfs_read", "file_io"),
    ("kprobe", "vfs_write", "file_io"),
    ("tracepoint", "syscalls/sys_enter_*", "syscall_errors"),
    ("kprobe", "schedule", "runq_latency"),
    ("tracepoint", "irq/irq_handler_entry", "irq"),
    ("kprobe", "__alloc_pages_nodemask", "memory_alloc"),
    ("tracepoint", "kmem/kmalloc", "memory_alloc"),
    ("kprobe", "udp_sendmsg", "dns"),
    ("uprobe", "c:getaddrinfo", "dns"),
    ("tracepoint", "oom/mark_victim", "oom_kills"),
    ("tracepoint", "tcp/tcp_retransmit_skb", "tcp_retransmits"),
    ("catalog", "tcp_connect", "tcp_connect"),
    ("kretprobe", "tcp_connect", "tcp_connect"),
    ("kretprobe", "do_fork", "exec"),
    ("tracepoint", "tcp_connect", "tcp_connect"),
]


@pytest.mark.parametrize(("kind", "target", "expected"), SEED_FORMS)
def test_seed_request_forms_resolve_to_the_probe_that_answers_them(
    kind: str, target: str, expected: str
) -> None:
    catalog = load_catalog()
    if expected not in catalog:
        pytest.skip(f"probe {expected} is not in the catalog yet")
    resolved = resolve_target(kind, target, catalog)
    assert resolved.ok, resolved.reason
    assert resolved.probe == expected
    assert expected in resolved.reason


def test_every_answer_of_every_probe_resolves_to_that_probe() -> None:
    catalog = load_catalog()
    for spec in catalog.probes.values():
        for answer in spec.answers:
            resolved = resolve_key(answer, catalog)
            plan = plan_attach(spec, validate_params(spec, spec.answer_params.get(answer, {})))
            if not plan.available:
                # this kernel lacks what the answer's parameters ask for (5.10: lock_contention's
                # kernel locks only): refused with the reason, the probe offered as the nearest
                assert resolved.how == "refused" and plan.reason in resolved.reason, resolved
                assert spec.name in resolved.nearest, (answer, resolved)
                continue
            assert resolved.probe == spec.name, (answer, resolved)


def test_an_unanswered_existing_tracepoint_goes_to_the_generic_probe() -> None:
    resolved = resolve_target("tracepoint", "timer/hrtimer_start")
    assert resolved.how == "generic"
    assert resolved.probe == "tracepoint"
    assert resolved.params == {"tracepoint": "timer:hrtimer_start"}


def test_a_bare_tracepoint_name_finds_its_category() -> None:
    resolved = resolve_target("tracepoint", "hrtimer_cancel")
    assert resolved.asked == "timer/hrtimer_cancel"
    assert resolved.probe == "tracepoint"


@pytest.mark.parametrize(
    ("kind", "target", "nearest"),
    [
        ("kprobe", "tcp_conect", "tcp_connect"),
        ("catalog", "file_open", "file_opens"),
        ("tracepoint", "nosuch/thing", None),
        ("kprobe", "definitely_not_a_function", None),
    ],
)
def test_refusals_are_clear_and_name_the_nearest_probes(
    kind: str, target: str, nearest: str | None
) -> None:
    resolved = resolve_target(kind, target)
    assert not resolved.ok and resolved.probe is None
    assert request_key(kind, target) in resolved.reason or target in resolved.reason
    if nearest is not None:
        assert nearest in resolved.nearest
        assert f"nearest probes: {nearest}" in resolved.reason or nearest in resolved.reason


def test_kprobe_refusal_says_why() -> None:
    resolved = resolve_target("kprobe", "definitely_not_a_function")
    assert "stable tracepoints" in resolved.reason


def test_resolution_becomes_a_runnable_request_with_capped_duration() -> None:
    ask = ProbeAsk(type="kprobe", target="tcp_connect", label="db", duration_s=60)
    resolved = resolve(ask)
    request = to_probe_request(ask, resolved)
    spec = load_catalog().probes["tcp_connect"]
    assert request.probe == "tcp_connect"
    assert request.duration_s == min(60, spec.duration.max)
    assert request.label == "db"


def test_generic_resolution_carries_the_tracepoint_parameter() -> None:
    ask = ProbeAsk(type="tracepoint", target="timer:hrtimer_start")
    request = to_probe_request(ask, resolve(ask))
    assert request.params == {"tracepoint": "timer:hrtimer_start"}
    assert request.duration_s == load_catalog().probes["tracepoint"].duration.default
