"""exec, live: an exec storm with argv, a failing exec, a non-zero exit, parents and lifetimes."""

from __future__ import annotations

import secrets

import pytest

from tests.support.ebpf import scaled
from tests.support.live_probe import Workload, run_around, save_example

pytestmark = pytest.mark.ebpf

SCRIPT = r"""
import json, subprocess, sys
token = sys.argv[1]
print(json.dumps({}), flush=True)
sys.stdin.readline()
for i in range(20):
    subprocess.run(["/bin/true", "--run", token])
for i in range(8):
    subprocess.run(["/bin/sh", "-c", "exit 3", token])
    try:
        subprocess.run(["/opt/" + token + "/bin/agent"])
    except FileNotFoundError:
        pass
for i in range(3):                  # an execvp PATH search: two misses, then found
    subprocess.run(["true"], env={"PATH": f"/opt/{token}-a:/opt/{token}-b:/usr/bin:/bin"})
print(json.dumps({}), flush=True)
"""


def test_exec_storm_shows_argv_parent_exit_codes_and_failures() -> None:
    token = f"t{secrets.token_hex(4)}"
    workload = Workload(SCRIPT, token)
    result = run_around("exec", workload, duration_s=scaled(3.0), by_pid=False)
    parent_label = workload.label
    workload.finish()
    totals = result.aggregates.totals
    assert totals["execs"] >= 28
    assert totals["failed_execs"] >= 8
    assert totals["exits"] >= 28
    commands = {e.key: e.count for e in result.aggregates.top["commands"]}
    ours = [k for k in commands if token in k]
    assert ours, commands
    # argv is captured: "/bin/true --run <token> <i>" for each i
    assert commands[f"/bin/true --run {token}"] == 20
    parents = {e.key for e in result.aggregates.top["parents"]}
    assert parent_label in parents
    failed = {e.key for e in result.aggregates.top["failed_execs"]}
    assert f"ENOENT /opt/{token}/bin/agent" in failed
    assert not any(f"/opt/{token}-" in k for k in failed)  # PATH search misses are not failures
    assert totals["path_search_misses"] >= 6
    codes = {e.key: e.count for e in result.aggregates.top["exit_codes"]}
    assert codes.get("0", 0) >= 20
    nonzero = {e.key: e.count for e in result.aggregates.top["nonzero_exits"]}
    assert nonzero.get("sh exit 3", 0) == 8, nonzero
    lifetime = result.aggregates.latency["lifetime"]
    assert lifetime.count >= 28
    assert lifetime.p50 is not None and 0 < lifetime.p50 < 1000  # ms: /bin/true is quick
    assert "execs" in result.summary and result.dropped == 0
    save_example(result)
