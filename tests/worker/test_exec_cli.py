"""`bpfsleuth exec` as a user runs it: exit codes 0/3/4, --json, --dry-run, `--`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.paths import BPFSLEUTH


def bpfsleuth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPFSLEUTH), "exec", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(autouse=True)
def _installed() -> None:
    assert BPFSLEUTH.exists(), f"{BPFSLEUTH} missing: run `make setup`"


def test_allowed_pipeline_after_double_dash_runs_and_exits_zero() -> None:
    done = bpfsleuth("--", "ss -tlnp | grep -c LISTEN")
    assert done.returncode == 0, done.stderr
    assert "verdict: allow" in done.stdout
    assert "exit " in done.stderr


def test_dry_run_prints_the_verdict_without_running() -> None:
    done = bpfsleuth("--dry-run", "uptime")
    assert done.returncode == 0
    assert "verdict: allow" in done.stdout
    assert " up " not in done.stdout  # uptime's own output never appears
    assert "note: dry run" in done.stderr


def test_denied_exits_four_with_the_reason() -> None:
    done = bpfsleuth("rm -rf /")
    assert done.returncode == 4
    assert "verdict: deny" in done.stdout and "rm" in done.stdout


def test_needs_approval_exits_three_and_does_not_run() -> None:
    done = bpfsleuth("--json", "cat /root/notes.txt")
    assert done.returncode == 3
    result = json.loads(done.stdout)
    assert result["verdict"] == "needs_approval" and result["ran"] is False
    assert result["stdout"] == ""


def test_json_output_is_a_command_result() -> None:
    done = bpfsleuth("--json", "--", "echo hello token=abc123secret")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ran"] is True and result["exit_code"] == 0
    assert result["stdout"] == "hello token=[REDACTED]\n"
    assert "abc123secret" not in done.stdout


def test_json_for_a_denied_command_still_parses() -> None:
    done = bpfsleuth("--json", "--", "uptime; reboot")
    assert done.returncode == 4
    assert json.loads(done.stdout)["verdict"] == "deny"


def test_approved_runs_a_needs_approval_command_with_a_timeout() -> None:
    done = bpfsleuth("--approved", "--timeout", "1", "--json", "--", "tail -f /dev/null")
    assert done.returncode == 0
    result = json.loads(done.stdout)
    assert result["ran"] and result["timed_out"]


def test_approved_but_missing_program_exits_one() -> None:
    done = bpfsleuth("--approved", "no-such-program-bpfsleuth")
    assert done.returncode == 1
    assert "not found" in done.stderr


def test_separate_words_are_joined_into_one_command_line() -> None:
    done = bpfsleuth("--json", "--", "echo", "a", "b")
    assert done.returncode == 0
    assert json.loads(done.stdout)["stdout"] == "a b\n"
