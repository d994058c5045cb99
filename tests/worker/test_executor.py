"""The executor runs real commands: pipes, limits, clean environment, redaction."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ebpf import scaled
from tests.support.procs import processes_with
from worker.host.executor import CLEAN_ENV, cut_marker, run_command
from worker.protocol import CommandRequest, CommandResult


def run(command: str, **kwargs: object) -> CommandResult:
    return run_command(CommandRequest(id="t", command=command), **kwargs)  # type: ignore[arg-type]


def zombie_children() -> list[int]:
    zombies = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            zombies.append(int(entry.name))
    return zombies


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_seed_command_finds_a_real_listener_through_a_pipe(listening_port: int) -> None:
    result = run(f"ss -tlnp | grep :{listening_port}")
    assert result.verdict == "allow" and result.ran
    assert result.exit_code == 0
    assert f"127.0.0.1:{listening_port}" in result.stdout
    assert result.stdout.count("\n") == 1  # grep kept only our listener


def test_three_stage_pipeline_gives_the_shell_answer() -> None:
    result = run("printf 'b\\na\\nb\\n' | sort | uniq -c")
    assert result.ran and result.exit_code == 0
    assert result.stdout.split() == ["1", "a", "2", "b"]


def test_exit_code_and_stderr_are_recorded() -> None:
    missing = run("ls /nonexistent-bpfsleuth-path")
    assert missing.ran and missing.exit_code == 2
    assert "No such file or directory" in missing.stderr
    no_match = run("grep -q no-such-line-anywhere /etc/hostname")
    assert no_match.ran and no_match.exit_code == 1


def test_failure_of_an_earlier_stage_is_noted() -> None:
    result = run("ls /nonexistent-bpfsleuth-path | wc -l")
    assert result.exit_code == 0 and result.stdout.strip() == "0"
    assert "stage 1 (ls) exited with 2" in result.note


def test_timeout_kills_the_whole_pipeline_and_leaves_no_process(tmp_path: Path) -> None:
    marker = tmp_path / f"follow-{uuid.uuid4().hex}"
    marker.write_text("line\n")
    started = time.monotonic()
    result = run(f"tail -f {marker} | grep line | cat", approved=True, timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert result.verdict == "needs_approval" and result.ran
    assert result.timed_out
    assert 0.9 <= elapsed < scaled(5)
    assert "timed out" in result.note
    assert processes_with(marker.name) == []
    assert zombie_children() == []


def test_a_zero_timeout_is_raised_to_a_short_positive_one() -> None:
    result = run("tail -f /dev/null", approved=True, timeout_s=0.0)
    assert result.timed_out and result.duration_s < scaled(2)


def test_output_is_cut_at_the_cap_with_a_visible_marker() -> None:
    result = run("seq 1 100000", output_cap=1024)
    assert result.ran and result.truncated
    assert result.stdout.endswith(cut_marker(1024))
    body = result.stdout[: -len(cut_marker(1024))]
    assert len(body.encode()) == 1024
    assert body.startswith("1\n2\n3\n")
    assert "…[output cut at 1024 bytes]" in result.stdout


def test_infinite_output_is_stopped_not_waited_for() -> None:
    result = run("cat /dev/zero", approved=True, output_cap=4096, timeout_s=scaled(10))
    assert result.truncated and not result.timed_out
    assert result.duration_s < scaled(5)


def test_small_output_is_not_marked() -> None:
    result = run("echo hello")
    assert result.stdout == "hello\n" and not result.truncated


def test_environment_is_clean() -> None:
    # The policy denies reading any environment, so ask the executor's own spawn path (the
    # stage the executor would start) what a command sees.
    from worker.host.executor import _run_pipeline

    outcome = _run_pipeline([["cat", "/proc/self/environ"]], timeout_s=5, output_cap=65536)
    assert outcome.ran, outcome.note
    variables = dict(item.split("=", 1) for item in outcome.stdout.split("\0") if item)
    assert variables == CLEAN_ENV


def test_stdin_is_closed_so_readers_of_stdin_return_at_once() -> None:
    result = run("wc -c", timeout_s=5)
    assert result.ran and not result.timed_out
    assert result.stdout.strip() == "0"


def test_working_directory_is_root() -> None:
    result = run("pwd")
    assert result.stdout == "/\n"


def test_unknown_program_gives_a_clear_result_not_a_crash() -> None:
    result = run("no-such-program-bpfsleuth --flag", approved=True)
    assert not result.ran
    assert "not found" in result.note
    assert result.exit_code is None


def test_denied_command_never_runs(tmp_path: Path) -> None:
    victim = tmp_path / "keep-me"
    victim.write_text("data")
    result = run(f"rm -f {victim}", approved=True)
    assert result.verdict == "deny" and not result.ran
    assert "never runs" in result.note
    assert victim.exists()


def test_needs_approval_does_not_run_without_approval(tmp_path: Path) -> None:
    marker = tmp_path / f"unapproved-{uuid.uuid4().hex}"
    marker.write_text("x\n")
    started = time.monotonic()
    result = run(f"tail -f {marker}")
    assert result.verdict == "needs_approval" and not result.ran
    assert time.monotonic() - started < 1
    assert "approval" in result.note


def test_a_symlink_to_a_secret_is_caught_at_run_time(tmp_path: Path) -> None:
    link = tmp_path / "innocent.txt"
    link.symlink_to("/etc/shadow")
    result = run(f"cat {link}")
    assert result.verdict == "deny" and not result.ran
    assert "/etc/shadow" in result.reason
    approved = run(f"cat {link}", approved=True)  # a denied secret stays denied, even approved
    assert approved.verdict == "deny" and not approved.ran


def test_secrets_are_redacted_from_stdout_and_stderr() -> None:
    token = "ghp_" + "Z9y8X7w6V5" * 4
    result = run(f"echo password=hunter2 {token} AKIAIOSFODNN7EXAMPLE")
    assert "hunter2" not in result.stdout and token not in result.stdout
    assert "AKIAIOSFODNN7EXAMPLE" not in result.stdout
    assert result.stdout.count("[REDACTED]") == 3
    assert token not in result.command
    failed = run("ls /nonexistent/api_key=abcd1234value")
    assert "No such file" in failed.stderr
    assert "abcd1234value" not in failed.stderr


def test_unquoted_glob_is_expanded_like_a_shell(tmp_path: Path) -> None:
    for name in ("a.log", "b.log", "c.txt"):
        (tmp_path / name).write_text(name + "\n")
    result = run(f"cat {tmp_path}/*.log")
    assert result.ran and result.stdout == "a.log\nb.log\n"
    quoted = run(f"cat '{tmp_path}/*.log'")
    assert quoted.exit_code == 1 and "No such file" in quoted.stderr


def test_argv_is_passed_without_a_shell(tmp_path: Path) -> None:
    result = run("echo 'a  b' '$HOME' ';' '|'")
    assert result.stdout == "a  b $HOME ; |\n"


def test_glob_with_quoted_special_directory_name_expands_only_the_unquoted_part(
    tmp_path: Path,
) -> None:
    odd = tmp_path / "dir[1]"
    odd.mkdir()
    (odd / "x.log").write_text("from odd dir\n")
    result = run(f"cat '{odd}'/*.log")
    assert result.ran and result.stdout == "from odd dir\n"


def test_glob_in_a_grep_pattern_without_matches_stays_literal() -> None:
    result = run("printf 'nginx\\nother\\n' | grep [n]ginx")
    assert result.stdout == "nginx\n"
