"""The installed `bpfsleuth` entry point, run as a user runs it."""

from __future__ import annotations

import json
import subprocess

from tests.support.paths import BPFSLEUTH


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPFSLEUTH), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_schema_command_prints_the_reply_schema() -> None:
    done = run("schema", "--part", "reply")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert "Diagnostic" in json.dumps(schema) and "Resolution" in json.dumps(schema)


def test_schema_command_rejects_an_unknown_part() -> None:
    done = run("schema", "--part", "nonsense")
    assert done.returncode != 0
    # a Typer choice: the error names the option and every part it accepts
    assert "--part" in done.stderr and "nonsense" in done.stderr
    assert all(part in done.stderr for part in ("all", "reply", "plan_result"))


def test_doctor_json_reports_every_named_check() -> None:
    done = run("doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = {check["name"] for check in report["checks"]}
    for expected in (
        "root",
        "tracefs",
        "bcc",
        "kernel headers",
        "bpf tracepoint",
        "bpf raw_tracepoint",
        "bpf kprobe",
        "bpf tracing",
        "bpf perf_event",
        "bpf uprobe",
        "tracepoints",
        "redis",
        "model",
        "slack",
    ):
        assert expected in names
    for check in report["checks"]:
        if check["status"] == "missing":
            assert check["fix"], f"{check['name']} is missing but says no fix"


def test_doctor_table_is_human_readable() -> None:
    done = run("doctor")
    assert done.returncode == 0, done.stderr
    assert "bpfsleuth doctor" in done.stdout
    assert "tracefs" in done.stdout
