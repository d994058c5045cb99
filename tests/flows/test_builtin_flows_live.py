"""Every built-in flow, run live (`worker.flows.run.run_flow`: real probes, real commands
through the policy and executor, the flow's analyzers) against a fault it is meant for. The
flow's findings, or failing that its probes' outputs, must name the culprit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.support.workloads.scenarios import (
    Fault,
    NoMemoryCgroup,
    Truth,
    cpu_hogs,
    dns_blackhole,
    exec_storm,
    lock_contention,
    missing_config,
    named_binary,
    oom_kill,
    pid_terms,
    refused_connects,
    running,
    script,
    unique,
)
from worker.flows.loader import load_flows
from worker.flows.run import FlowRun, run_flow

pytestmark = [pytest.mark.slow]

WRITER = """
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
block = b"x" * 65536
while True:
    os.write(fd, block)
    os.fsync(fd)
    if os.lseek(fd, 0, os.SEEK_CUR) > 64 * 2**20:
        os.lseek(fd, 0, os.SEEK_SET)
"""


@contextmanager
def fsync_writer(workdir: Path) -> Iterator[Fault]:
    """A database-like writer: 64 KiB writes, each followed by fsync, on the root disk."""
    comm = unique("ingest-db")
    binary = named_binary(workdir, comm)
    data = workdir / "wal.bin"
    with running([str(binary), str(script(workdir, WRITER)), str(data)]) as procs:
        pid = procs[0].pid
        yield Fault(truth=lambda: Truth(((comm,), pid_terms(pid))), processes=procs)


CLI = "from bot.cli import main; main()"
Start = Callable[[Path], AbstractContextManager[Fault]]
CASES: dict[str, tuple[Start, str]] = {
    "network_debug": (refused_connects, "findings"),
    "dns_debug": (dns_blackhole, "findings"),
    "cpu_saturation": (cpu_hogs, "outputs"),
    "lock_contention": (lock_contention, "findings"),
    "disk_latency": (fsync_writer, "outputs"),
    "memory_pressure": (oom_kill, "findings"),
    "file_errors": (missing_config, "findings"),
    "process_churn": (exec_storm, "outputs"),
    "general_sweep": (missing_config, "findings"),
    "first_minute": (cpu_hogs, "outputs"),
}


def _findings_text(run: FlowRun) -> str:
    return "\n".join(f"{f.root_cause}\n{f.ebpf_evidence}" for f in run.findings)


def _outputs_text(run: FlowRun) -> str:
    parts = [_findings_text(run)]
    for saved in run.outputs.values():
        if saved.probe is not None:
            parts.append(saved.probe.summary)
            parts += [
                f"{row.key} {row.labels}"
                for rows in saved.probe.aggregates.top.values()
                for row in rows
            ]
        if saved.command is not None:
            parts.append(saved.command.stdout)
    return "\n".join(parts)


def same_name_pids(truth: Truth) -> set[str]:
    """Pids of live processes named like the culprit: on a shared host another run of the
    same faulty program is the same culprit."""
    found = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in truth.groups[0]:
                found.add(comm.parent.name)
        except OSError:
            continue
    return found


def _culprit_named(truth: Truth, text: str, also: set[str] | None = None) -> bool:
    """The process name and its pid, however the output spells the pair."""
    name_terms, pids = truth.groups[0], truth.groups[1]
    numbers = [p.removeprefix("pid ") for p in pids] + sorted(also or ())
    has_name = any(Truth.named(term, text) for term in name_terms)
    has_pid = any(Truth.named(n, text) for n in numbers)
    return has_name and has_pid


def test_every_builtin_flow_has_a_live_case() -> None:
    assert set(CASES) == set(load_flows().names())


@pytest.mark.ebpf
@pytest.mark.parametrize("flow_name", sorted(CASES))
def test_a_builtin_flow_names_the_culprit_of_its_fault(flow_name: str) -> None:
    start, where = CASES[flow_name]
    flow = load_flows().get(flow_name)
    assert flow is not None
    workdir = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    try:
        with start(workdir) as fault:
            run = run_flow(flow, host="flow-host")
            truth = fault.truth()
            twins = same_name_pids(truth)
    except NoMemoryCgroup as exc:
        pytest.skip(str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert list(run.outputs) == [step.saved_as for step in flow.steps]
    for saved in run.outputs.values():
        assert saved.error is None, saved
        if saved.probe is not None:
            assert saved.probe.error is None, saved.probe.error
            assert saved.probe.attach_points
        if saved.command is not None:
            assert saved.command.ran and saved.command.exit_code == 0, saved.command
    text = _findings_text(run) if where == "findings" else _outputs_text(run)
    assert _culprit_named(truth, text, twins), f"{truth.groups[:2]} not in:\n{text[:3000]}"


@pytest.mark.ebpf
def test_flows_run_cli_prints_json_outputs_of_a_live_flow() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    try:
        with refused_connects(workdir) as fault:
            done = subprocess.run(
                [sys.executable, "-c", CLI, "flows", "run", "network_debug", "--json"],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            truth = fault.truth()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    run = FlowRun.model_validate_json(done.stdout)
    assert run.flow == "network_debug"
    assert set(run.outputs) == {
        "tcp_pending",
        "listeners",
        "connect_events",
        "retransmit_events",
        "findings",
    }
    assert _culprit_named(truth, _findings_text(run))
