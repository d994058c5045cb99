"""`bpfsleuth bot`: clear errors for missing settings; Socket Mode uses the app token."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bot import BOT_TOKEN, BPFSLEUTH
from tests.support.fakes.slack_api import FakeSlackApi
from tests.support.redis_server import RedisServer


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(extra)
    return env


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPFSLEUTH), "bot", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_bot_token_it_says_which_variable_to_set() -> None:
    done = _run()
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in done.stderr


def test_socket_mode_without_an_app_token_points_to_http_mode() -> None:
    done = _run(SLACK_BOT_TOKEN=BOT_TOKEN)
    assert done.returncode == 2
    assert "Socket Mode needs SLACK_APP_TOKEN" in done.stderr and "--http" in done.stderr


def test_http_mode_without_a_signing_secret_is_refused() -> None:
    done = _run("--http", SLACK_BOT_TOKEN=BOT_TOKEN)
    assert done.returncode == 2
    assert "SLACK_SIGNING_SECRET" in done.stderr


def test_the_bot_command_is_listed_beside_the_worker_commands() -> None:
    done = subprocess.run(
        [str(BPFSLEUTH), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "bot" in done.stdout and "doctor" in done.stdout


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as fake:
        yield fake


@pytest.mark.redis
def test_socket_mode_opens_a_connection_with_the_app_token(
    redis_server: RedisServer,
    slack: FakeSlackApi,
    tmp_path: Path,
) -> None:
    env = _env(
        REDIS_URL=redis_server.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-A0BPF-test",
        SLACK_API_URL=slack.url,
    )
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BPFSLEUTH), "bot"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        opened = slack.wait_for(
            lambda: slack.calls_to("apps.connections.open"),
            timeout=30,
            what="a Socket Mode connect",
        )
        assert opened[0].token == "xapp-1-A0BPF-test"
        assert slack.calls_to("auth.test")[0].token == BOT_TOKEN
        time.sleep(0.5)
        assert process.poll() is None, log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert slack.violations == []


def test_the_entry_point_imports_no_slack_until_the_bot_command_runs() -> None:
    code = (
        "import sys, bot.cli; bot.cli.build_app(); "
        "print(sorted(m for m in ('slack_bolt', 'slack_sdk', 'celery') if m in sys.modules))"
    )
    done = subprocess.run(
        [str(BPFSLEUTH.parent / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
