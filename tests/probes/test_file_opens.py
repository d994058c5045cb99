"""file_opens, live: a loop opening a missing file is the top failure, with path, errno, pid."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_probe import Workload, run_around, save_example

pytestmark = pytest.mark.ebpf


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """A neutrally named directory (the test's name would give the answer away)."""
    path = Path(tempfile.mkdtemp(prefix="app-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


SCRIPT = r"""
import json, os, sys
missing = os.path.join(sys.argv[1], "settings.ini")
present = os.path.join(sys.argv[1], "data.txt")
open(present, "w").close()
print(json.dumps({"missing": missing, "present": present}), flush=True)
sys.stdin.readline()
for _ in range(300):
    try:
        open(missing)
    except FileNotFoundError:
        pass
for _ in range(20):
    open(present).close()
fd = os.open(os.path.join(sys.argv[1], "new.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.close(fd)
print(json.dumps({}), flush=True)
"""


def test_missing_file_loop_is_the_top_failure(app_dir: Path) -> None:
    workload = Workload(SCRIPT, str(app_dir))
    result = run_around("file_opens", workload, duration_s=2.5)
    missing = workload.setup["missing"]
    totals = result.aggregates.totals
    assert totals["failures"] >= 300
    assert totals["opens"] >= totals["failures"] + 21
    top = result.aggregates.top["failures"][0]
    assert top.labels["path"] == missing
    assert top.labels["errno"] == "ENOENT"
    assert top.count == 300
    label = workload.label
    assert top.labels["top_process"] == label
    workload.finish()
    assert f"300 ENOENT on {missing}" in result.summary
    paths = {entry.key: entry.count for entry in result.aggregates.top["paths"]}
    assert paths[missing] == 300
    created = [e for e in result.events if e["data"]["path"].endswith("new.log")]
    for event in created:
        assert "O_CREAT" in event["data"]["flags"] and "O_WRONLY" in event["data"]["flags"]
    save_example(result)


def test_failures_only_still_counts_successes(app_dir: Path) -> None:
    workload = Workload(SCRIPT, str(app_dir))
    result = run_around("file_opens", workload, duration_s=2.0, params={"failures_only": True})
    workload.finish()
    assert result.aggregates.totals["failures"] >= 300
    assert result.aggregates.totals["opens"] >= 321
    assert all(e.labels.get("errno") != "OK" for e in result.aggregates.top["failures"])
    paths = {entry.key for entry in result.aggregates.top["paths"]}
    assert workload.setup["present"] not in paths  # successes are not keyed
