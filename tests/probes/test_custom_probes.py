"""Custom probes dropped into BPFSLEUTH_PROBE_PATH: validated with file:line errors, refused until
their exact content is approved, and run live (generic reader) once approved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probes.catalog import load_builtin_catalog, load_catalog
from probes.custom.approval import Approval, approval_status, content_hash, record_approval
from probes.engine.runner import prepare, run_probes
from probes.models import ProbeRequest
from probes.params import ProbeRequestError
from probes.resolver import resolve_key
from tests.support.live_probe import Workload, run_around
from tests.support.paths import REPO
from tests.support.redis_server import RedisServer

EXAMPLES = Path(__file__).resolve().parent / "custom_examples"

VALID_YAML = """\
name: {name}
description: "Counts openat() calls by process (pid, comm): who is hammering the filesystem."
attach:
  - role: file opens
    any_of:
      - kind: tracepoint
        target: syscalls:sys_enter_openat
params:
  limit:
    type: int
    min: 1
    max: 100
    default: {default}
    define: ROW_LIMIT
    description: "Rows kept"
output:
  pid: "Process (tgid)"
  comm: "Its command name"
  count: "openat() calls"
duration:
  default: 3
  max: 10
overhead: low
reads_user_memory: false
tables:
  - name: opens
    kind: counter
    key: [comm, pid]
"""

VALID_C = """\
/* {name}: counts openat() calls per process in the kernel. Overhead: low. */
struct key_t {{
    u32 pid;
    char comm[BPFS_COMM_LEN];
}};
BPF_HASH(opens, struct key_t, u64, 1024);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{{
    if (bs_skip())
        return 0;
    struct key_t key = {{}};
    key.pid = bs_tgid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    {body}
    return 0;
}}
"""

OPENS = """
import json, os, sys
print(json.dumps({}), flush=True)
sys.stdin.readline()
for _ in range(400):
    os.close(os.open("/dev/null", os.O_RDONLY))
print(json.dumps({"opened": 400}), flush=True)
"""


def make_probe(
    root: Path, name: str, *, default: int = 10, body: str = "opens.increment(key);"
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "probe.yaml").write_text(VALID_YAML.format(name=name, default=default))
    (folder / "probe.bpf.c").write_text(VALID_C.format(name=name, body=body))
    return folder


def approve(folder: Path, by: str = "alice") -> None:
    record_approval(
        Approval(name=folder.name, sha256=content_hash(folder), by=by), folder, fleet_url=None
    )


@pytest.fixture
def probe_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sensors"
    root.mkdir()
    monkeypatch.setenv("BPFSLEUTH_PROBE_PATH", f"{tmp_path / 'absent'}:{root}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    return root


def line_number(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


@pytest.mark.ebpf
def test_an_approved_custom_probe_runs_live_and_reports_its_workload(probe_root: Path) -> None:
    folder = make_probe(probe_root, "opens_by_proc")
    approve(folder)
    catalog = load_catalog()
    assert catalog.source_of("opens_by_proc") == str(probe_root)
    assert catalog.source_of("tcp_connect") == "builtin"
    workload = Workload(OPENS)
    result = run_around("opens_by_proc", workload, duration_s=2.0)
    workload.finish()
    rows = result.aggregates.top["opens"]
    assert rows[0].key == f"comm={workload.comm} pid={workload.pid}"
    assert rows[0].count >= 400
    assert result.event_count >= 400
    assert "opens_by_proc" in result.summary and str(workload.pid) in result.summary
    assert result.attach_points == ["tracepoint:syscalls:sys_enter_openat"]


@pytest.mark.ebpf
def test_c_that_does_not_compile_is_broken_with_its_line_and_builtins_still_load(
    probe_root: Path,
) -> None:
    folder = make_probe(probe_root, "bad_c", body="opens.increment(no_such_key);")
    catalog = load_catalog()
    assert "bad_c" not in catalog and "bad_c" not in catalog.blocked
    line = line_number(folder / "probe.bpf.c", "no_such_key")
    assert f"{folder / 'probe.bpf.c'}:{line}: error:" in catalog.broken["bad_c"]
    assert "no_such_key" in catalog.broken["bad_c"]
    assert set(load_builtin_catalog().probes) <= set(catalog.probes)


def test_a_parameter_default_out_of_its_bounds_names_the_yaml_line(probe_root: Path) -> None:
    folder = make_probe(probe_root, "wide_param", default=500)
    catalog = load_catalog()
    line = line_number(folder / "probe.yaml", "default: 500")
    message = catalog.broken["wide_param"]
    assert f"{folder / 'probe.yaml'}:{line}:" in message
    assert "out of range [1, 100]" in message


def test_a_request_beyond_a_parameter_bound_is_refused_before_anything_loads(
    probe_root: Path,
) -> None:
    approve(make_probe(probe_root, "opens_ok"))
    with pytest.raises(ProbeRequestError, match=r"limit=101 is out of range \[1, 100\]"):
        prepare(ProbeRequest(probe="opens_ok", duration_s=1, params={"limit": 101}))


def test_a_schema_error_points_at_the_offending_yaml_line(probe_root: Path) -> None:
    folder = make_probe(probe_root, "bad_kind")
    text = (folder / "probe.yaml").read_text().replace("kind: counter", "kind: gauge")
    (folder / "probe.yaml").write_text(text)
    message = load_catalog().broken["bad_kind"]
    assert f"probe.yaml:{line_number(folder / 'probe.yaml', 'kind: gauge')}:" in message
    assert "tables.0.kind" in message


def test_a_changed_file_needs_a_new_approval_runner_and_resolver_say_why(
    probe_root: Path,
) -> None:
    folder = make_probe(probe_root, "opens_changed")
    approve(folder, by="alice")
    assert "opens_changed" in load_catalog()
    with (folder / "probe.bpf.c").open("a") as handle:
        handle.write("/* edited after review */\n")
    catalog = load_catalog()
    assert "opens_changed" not in catalog
    assert "changed since alice approved it" in catalog.blocked["opens_changed"]
    [result] = run_probes([ProbeRequest(probe="opens_changed", duration_s=1)])
    assert result.error is not None and "changed since alice approved it" in result.error
    refusal = resolve_key("catalog:opens_changed")
    assert not refusal.ok and "changed since alice approved it" in refusal.reason
    status = approval_status("opens_changed", folder)
    assert not status.approved and status.approval is not None


def test_an_unapproved_probe_is_listed_as_such_and_refused(probe_root: Path) -> None:
    make_probe(probe_root, "opens_new")
    catalog = load_catalog()
    assert "not approved" in catalog.blocked["opens_new"]
    assert "bpfsleuth probes approve opens_new" in catalog.blocked["opens_new"]
    with pytest.raises(ProbeRequestError, match="not approved"):
        prepare(ProbeRequest(probe="opens_new", duration_s=1))
    assert "not approved" in resolve_key("opens_new").reason


def test_a_custom_probe_may_not_shadow_a_builtin_or_ship_python(probe_root: Path) -> None:
    make_probe(probe_root, "tcp_connect")
    sneaky = make_probe(probe_root, "opens_reader")
    (sneaky / "reader.py").write_text("import os\n")
    catalog = load_catalog()
    shadow = next(v for k, v in catalog.broken.items() if k.startswith("tcp_connect"))
    assert "name of a built-in probe" in shadow
    assert catalog.source_of("tcp_connect") == "builtin"
    assert catalog.probes["tcp_connect"].directory.parent.name == "catalog"
    assert "may not ship Python" in catalog.broken["opens_reader"]


def test_reading_user_memory_must_be_declared(probe_root: Path) -> None:
    folder = make_probe(
        probe_root,
        "peeks",
        body="char c = 0; bpf_probe_read_user(&c, 1, (void *)args->filename); "
        "opens.increment(key);",
    )
    message = load_catalog().broken["peeks"]
    assert f"probe.bpf.c:{line_number(folder / 'probe.bpf.c', 'bpf_probe_read_user')}:" in message
    assert "reads_user_memory: true" in message


def _cli(
    *args: str, env_root: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env={**env, "BPFSLEUTH_PROBE_PATH": str(env_root), **(extra or {})},
        timeout=120,
        check=False,
    )


def test_cli_approval_shows_safety_facts_needs_a_tty_or_yes_and_list_shows_source(
    probe_root: Path,
) -> None:
    folder = make_probe(probe_root, "opens_cli")
    refused = _cli("probes", "approve", "opens_cli", "--by", "bob", env_root=probe_root)
    assert refused.returncode == 2
    assert "reads user memory: no" in refused.stdout and "overhead:          low" in refused.stdout
    assert "max duration:      10 s" in refused.stdout
    assert "--yes" in refused.stderr
    assert not approval_status("opens_cli", folder).approved
    done = _cli("probes", "approve", "opens_cli", "--by", "bob", "--yes", env_root=probe_root)
    assert done.returncode == 0, done.stderr
    status = approval_status("opens_cli", folder)
    assert status.approved and status.approval is not None and status.approval.by == "bob"
    listed = _cli("probes", "list", "--json", env_root=probe_root)
    data = json.loads(listed.stdout)
    rows = {row["name"]: row for row in data["probes"]}
    assert rows["opens_cli"]["source"] == str(probe_root)
    assert rows["exec"]["source"] == "builtin"
    builtin = _cli("probes", "approve", "exec", "--yes", env_root=probe_root)
    assert builtin.returncode == 2 and "part of the release" in builtin.stdout


@pytest.mark.redis
def test_fleet_approval_lives_in_redis_and_is_honoured_where_reachable(
    probe_root: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = make_probe(probe_root, "opens_fleet")
    env = {"REDIS_URL": redis_server.url}
    no_redis = _cli("probes", "approve", "opens_fleet", "--fleet", "--yes", env_root=probe_root)
    assert no_redis.returncode == 2 and "--fleet needs REDIS_URL" in no_redis.stderr
    done = _cli(
        "probes",
        "approve",
        "opens_fleet",
        "--fleet",
        "--yes",
        "--by",
        "carol",
        env_root=probe_root,
        extra=env,
    )
    assert done.returncode == 0, done.stderr
    assert "(redis: bpfsleuth:probe-approvals)" in done.stdout
    assert not (probe_root / "approvals.json").exists()
    assert not approval_status("opens_fleet", folder).approved  # REDIS_URL unset here
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    status = approval_status("opens_fleet", folder)
    assert status.approved and status.where == "redis" and "carol" in status.reason
    assert "opens_fleet" in load_catalog()


EXECS = """
import json, subprocess, sys
print(json.dumps({}), flush=True)
sys.stdin.readline()
for _ in range(30):
    subprocess.call(["/bin/true"])
print(json.dumps({"ran": 30}), flush=True)
"""


@pytest.mark.ebpf
def test_the_generic_reader_streams_events_and_reads_histograms(probe_root: Path) -> None:
    folder = probe_root / "exec_events"
    shutil.copytree(EXAMPLES / "exec_events", folder)
    approve(folder)
    workload = Workload(EXECS)
    result = run_around("exec_events", workload, duration_s=3.0, by_pid=False)
    workload.finish()
    assert result.aggregates.totals["execs"] >= 30
    rows = {row.key: row.count for row in result.aggregates.top["execs"]}
    assert rows.get("true", 0) >= 30
    assert result.events and {"table", "pid", "comm"} <= set(result.events[0])
    gaps = result.aggregates.latency["gaps"]
    assert gaps.unit == "us" and gaps.count >= 29 and gaps.p50 is not None
    assert "execs:" in result.summary and "gaps:" in result.summary


def test_the_readme_example_probe_is_valid_and_waits_for_approval(probe_root: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = EXAMPLES / "opens_by_process"
    assert (example / "probe.yaml").read_text() in readme
    assert (example / "probe.bpf.c").read_text() in readme
    shutil.copytree(example, probe_root / "opens_by_process")
    catalog = load_catalog()
    assert catalog.broken == {}
    assert "not approved" in catalog.blocked["opens_by_process"]
