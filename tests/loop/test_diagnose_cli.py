"""`bpfsleuth diagnose` run as a user runs it: the installed entry point, real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from tests.support.fakes.anthropic_api import FakeAnthropic
from tests.support.paths import BPFSLEUTH


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    base.pop("BPFSLEUTH_MODEL", None)
    return {**base, "BPFSLEUTH_HOST": "cli-host", **extra}


def diagnostic(command: str) -> dict[str, Any]:
    return {
        "reply": {
            "response_type": "diagnostic",
            "reasoning": "check load",
            "commands": [{"id": "load", "command": command}],
        }
    }


RESOLUTION = {
    "reply": {
        "response_type": "resolution",
        "root_cause": "load is fine",
        "resolution_plan": "1. nothing",
        "confidence": "Medium",
    }
}


def test_offline_json_prints_the_resolution_and_the_transcript() -> None:
    done = subprocess.run(
        [str(BPFSLEUTH), "diagnose", "the server feels slow", "--model", "offline", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["resolution"]["confidence"] in {"High", "Medium", "Low"}
    transcript = out["transcript"]
    assert transcript["hosts"] == ["cli-host"]
    assert transcript["turns"][0]["reply"]["response_type"] == "diagnostic"
    ran = [c["command"] for r in transcript["results"] for c in r["command_results"].values()]
    assert "uptime" in ran
    assert "step 1" in done.stderr and "uptime" in done.stderr  # progress went to stderr


def test_claude_through_the_base_url_with_live_progress_and_token_usage() -> None:
    with FakeAnthropic([diagnostic("uptime"), RESOLUTION]) as fake:
        done = subprocess.run(
            [str(BPFSLEUTH), "diagnose", "load is high", "--model", "anthropic", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env(ANTHROPIC_API_KEY="sk-cli", ANTHROPIC_BASE_URL=fake.url),
        )
    assert done.returncode == 0, done.stderr
    assert fake.violations == []
    out = json.loads(done.stdout)
    assert out["resolution"]["root_cause"] == "load is fine"
    assert out["token_usage"]["calls"] == 2 and out["token_usage"]["cache_read_input_tokens"] > 0
    assert [t["usage"]["calls"] for t in out["transcript"]["turns"]] == [1, 1]
    assert "[allow] load: uptime" in done.stderr
    assert "resolution: confidence Medium" in done.stderr


def test_max_iterations_one_forces_an_immediate_final_answer() -> None:
    with FakeAnthropic([diagnostic("uptime")]) as fake:
        done = subprocess.run(
            [
                str(BPFSLEUTH),
                "diagnose",
                "x",
                "--model",
                "anthropic",
                "--json",
                "--max-iterations",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env(ANTHROPIC_API_KEY="sk-cli", ANTHROPIC_BASE_URL=fake.url),
        )
    assert done.returncode == 0, done.stderr
    assert "This is your last step" in fake.user_texts(0)[-1]
    out = json.loads(done.stdout)
    assert out["resolution"]["confidence"] == "Low" and out["resolution_source"] == "synthesised"


def test_ctrl_c_stops_cleanly_with_exit_130_and_no_command_left_running() -> None:
    with FakeAnthropic([diagnostic("vmstat 1 17")]) as fake:
        proc = subprocess.Popen(
            [str(BPFSLEUTH), "diagnose", "x", "--model", "anthropic", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(ANTHROPIC_API_KEY="sk-cli", ANTHROPIC_BASE_URL=fake.url),
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if "[allow] load: vmstat 1 17" in line or time.monotonic() > deadline:
                break
        time.sleep(1.0)  # vmstat is running now
        proc.send_signal(signal.SIGINT)
        try:
            rest = proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 130
    assert "interrupted" in rest
    left = subprocess.run(["pgrep", "-f", "vmstat 1 17"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
