"""A loop on one object versus a search over many (fast, no kernel): a service retrying one
missing config file is the finding, not a compiler or test runner whose bigger ENOENT count is
spread over hundreds of search paths; a search alone stays Low. Names, paths and rates are drawn
at random on each run."""

from __future__ import annotations

import random
import secrets

from probes.models import TopEntry
from tests.models.test_relevance import error_row, errors_run, evidence, pid, service
from worker.models.offline.planner import conclude, findings_for

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
