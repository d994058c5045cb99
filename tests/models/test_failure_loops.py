"""A loop on one object versus a search over many, and a second CPU hog (fast, no kernel):
a service retrying one missing config file is the finding, not a compiler or test runner whose
bigger ENOENT count is spread over hundreds of search paths; a search alone stays Low; a hog
seen only in the CPU profile is named beside the one the run-queue result kept. Names, paths and
rates are drawn at random on each run."""

from __future__ import annotations

import random
import secrets

from probes.models import Aggregates, LatencyStats, TopEntry
from tests.models.test_relevance import error_row, errors_run, evidence, pid, service
from worker.backends.offline.planner import conclude, findings_for
from worker.protocol import EbpfResult

SEARCHERS = ("mypy", "python3", "pytest", "cc1", "node")


def search_row(comm: str, p: int, count: int) -> TopEntry:
    """A search: `count` ENOENTs over many paths, at most a few on any one."""
    row = error_row(comm, p, "newfstatat", "ENOENT", count, path=f"/usr/lib/{secrets.token_hex(6)}")
    row.labels["objects"] = random.randint(50, 400)
    row.labels["repeat"] = random.randint(1, 8)
    return row


def test_a_loop_on_the_named_services_config_beats_a_bigger_search() -> None:
    comm, word = service()
    p = pid()
    path = f"/tmp/{secrets.token_hex(4)}/etc/{word}/{word}.{random.choice(['yaml', 'conf'])}"
    loop = int(random.uniform(40, 110) * 3)
    rows = [
        search_row(random.choice(SEARCHERS), pid(), loop * random.randint(4, 10)),
        error_row(comm, p, "openat", "ENOENT", loop, path=path),
        error_row(service()[0], pid(), "openat", "ENOENT", random.randint(12, 15), path="/a/b"),
    ]
    random.shuffle(rows)
    symptom = random.choice(
        [
            f"something wrong with {word} config? it never gets ready",
            f"{word} won't come up after the rollout",
            f"{word} is slow to start and logs are full of config errors",
        ]
    )
    ranked = findings_for(evidence(symptom, errors_run(rows)))
    assert ranked[0].subject is not None and ranked[0].subject.comm == comm, ranked[0].root_cause
    resolution = conclude(evidence(symptom, errors_run(rows)))
    assert f"{comm} (pid {p})" in resolution.root_cause and path in resolution.root_cause
    assert resolution.confidence in {"High", "Medium"}, resolution.root_cause


def test_a_search_alone_is_low_and_says_it_is_a_search() -> None:
    searcher, p = random.choice(SEARCHERS), pid()
    _, word = service()
    row = search_row(searcher, p, random.randint(600, 3000))
    resolution = conclude(evidence(f"{word} is acting up today", errors_run([row])))
    assert resolution.confidence == "Low", resolution.root_cause
    ranked = findings_for(evidence(f"{word} is acting up today", errors_run([row])))
    assert "a search, not a loop" in ranked[0].root_cause


def test_a_second_cpu_hog_seen_in_the_profile_is_named_beside_the_first() -> None:
    """The run-queue result was shortened to its top rows (a VM behind which most waits
    happened); the host-wide profile shows a second process as busy: both are named."""
    vm, spinner = (f"{service()[0]}", f"{service()[0]}")
    v, s = pid(), pid()
    runq = EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        duration_s=3.0,
        summary="run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=900, p50=0.1, p99=40.0, max=90.0)},
            top={
                "behind": [TopEntry(key=f"{vm} (pid {v})", count=300, value=1300.0)],
                "on_cpu": [
                    TopEntry(key=f"{vm} (pid {v})", count=50, labels={"pid": v, "cpu_pct": 80})
                ],
            },
        ),
    )
    pct = random.uniform(60, 99)
    profile = EbpfResult(
        program_name="cpu_profile",
        probe="cpu_profile",
        duration_s=3.0,
        summary=f"samples: busiest {spinner} (pid {s})",
        aggregates=Aggregates(
            top={
                "processes": [
                    TopEntry(
                        key=f"{spinner} (pid {s})",
                        count=130,
                        labels={"pid": s, "cpu_pct": round(pct, 1)},
                    ),
                    TopEntry(key=f"{vm} (pid {v})", count=120, labels={"pid": v, "cpu_pct": 80.0}),
                ]
            }
        ),
    )
    _, word = service()
    resolution = conclude(evidence(f"p99 on {word} is terrible since noon", runq, profile))
    assert f"{spinner} (pid {s})" in resolution.root_cause
    assert f"{vm} (pid {v})" in resolution.root_cause


def test_another_calls_huge_enoent_count_is_no_baseline_for_an_open_loop() -> None:
    """A package manager's 10,000 rename() ENOENTs (no object recorded) beside the named
    service's open() loop on its config: the loop is still unusual for an open()."""
    comm, word = service()
    p = pid()
    path = f"/tmp/{secrets.token_hex(4)}/etc/{word}/{word}.ini"
    loop = int(random.uniform(60, 110) * 3)
    rows = [
        error_row("dpkg", pid(), "rename", "ENOENT", random.randint(8000, 15000)),
        error_row("dpkg", pid(), "lseek", "ESPIPE", random.randint(8000, 15000)),
        error_row(comm, p, "openat", "ENOENT", loop, path=path),
    ]
    symptom = f"{word} is slow to start and logs are full of config errors"
    ranked = findings_for(evidence(symptom, errors_run(rows)))
    assert ranked[0].subject is not None and ranked[0].subject.comm == comm, ranked[0].root_cause
    resolution = conclude(evidence(symptom, errors_run(rows)))
    assert resolution.confidence in {"High", "Medium"} and path in resolution.root_cause


def test_a_second_cpu_hog_seen_only_by_pidstat_is_named_when_the_profile_saw_nothing() -> None:
    vm, spinner = service()[0], service()[0]
    v, s = pid(), pid()
    runq = EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        duration_s=3.0,
        summary="run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=900, p50=0.1, p99=30.0, max=90.0)},
            top={
                "behind": [TopEntry(key=f"{vm} (pid {v})", count=300, value=5000.0)],
                "on_cpu": [
                    TopEntry(key=f"{vm} (pid {v})", count=50, labels={"pid": v, "cpu_pct": 60})
                ],
            },
        ),
    )
    pct = random.uniform(45, 99)  # a second hog, not a background process at a third
    row = "Average:        0     {}   {:.2f}    0.00    0.00    0.00   {:.2f}     -  {}\n"
    pidstat = row.format(s, pct, pct, spinner) + row.format(v, 50.0, 50.0, vm)
    _, word = service()
    shown = evidence(
        f"{word} latency doubled, nothing changed", runq, commands={"cpu_now": pidstat}
    )
    resolution = conclude(shown)
    assert f"{spinner} (pid {s})" in resolution.root_cause
    assert f"{spinner} (pid {s})" in resolution.ebpf_evidence


def test_a_forked_childs_few_long_waits_do_not_make_a_vm_the_high_answer_to_churn() -> None:
    """A shell forks 30+ children a second; one child (still named like its parent) waited a
    dozen times behind a VM. The VM is no High answer: the churn of the named parent is."""
    comm, word = service()
    vm = service()[0]
    parent, child, v = pid(), pid(), pid()
    runq = EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        duration_s=3.3,
        summary="run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=20000, p50=0.01, p99=6.1, max=600.0)},
            top={
                "waiters": [
                    TopEntry(key=f"{comm} (pid {child})", count=random.randint(6, 30), value=170.0)
                ],
                "behind": [TopEntry(key=f"{vm} (pid {v})", count=5000, value=650.0)],
                "on_cpu": [
                    TopEntry(key=f"{vm} (pid {v})", count=80, labels={"pid": v, "cpu_pct": 130})
                ],
            },
        ),
    )
    forks = random.randint(90, 140)
    exits = EbpfResult(
        program_name="process_exits",
        probe="process_exits",
        duration_s=3.3,
        summary=f"most forks by {comm} (pid {parent}) x{forks}",
        aggregates=Aggregates(
            top={
                "spawners": [
                    TopEntry(
                        key=f"{comm} (pid {parent})",
                        count=forks,
                        labels={"pid": parent, "comm": comm},
                    )
                ]
            }
        ),
    )
    resolution = conclude(evidence(f"{word} host is sluggish, something is churning", runq, exits))
    assert f"{comm} (pid {parent})" in resolution.root_cause, resolution.root_cause
