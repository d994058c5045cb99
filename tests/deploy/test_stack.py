"""The compose stack as docs/deploy.md runs it, end to end, with podman.

`make test-deploy` runs this (BPFSLEUTH_TEST_DEPLOY=1; plain `make test` skips it: it builds
images and starts containers). The commands come from the blocks of docs/deploy.md marked
`<!-- deploy-test: NAME -->` and run as written, so the docs stay true. Then:

- a real fault on the host (a client connecting 10 times a second to a closed 127.0.0.1 port,
  under a random name), and a signed `/diagnose <host> ...` to the containerised bot (gunicorn,
  HTTP mode) whose Slack is the fake Slack Web API on this host;
- the resolution card in the thread must name the culprit (its name, pid and the port) in the
  root cause and in the eBPF evidence, and the stored investigation must carry eBPF results
  from the containerised host worker (its host name exists nowhere else);
- the Redis container restarts: the investigation is still there and the workers and bot work
  again (a second `/diagnose hosts` lists the host);
- the stack comes down and nothing of it is left: containers, pods, networks; the test removes
  the volumes too.

Names (project, host, ports, channel, secrets) are random on each run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bot import all_text, buttons
from tests.support.fakes.slack_api import SPEC_PATH, FakeSlackApi, Message, SlackRequests
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.workloads.scenarios import host_turn, refused_connects

DOCS = REPO / "docs" / "deploy.md"
SYMPTOM = "the app keeps saying it can't reach its backend"
READY_TIMEOUT_S = 180.0
RESOLVED_TIMEOUT_S = 420.0
# The Slack spec the fake checks calls against: ../shared of a checkout under /work, or of the
# directory holding this worktree.
SPEC = next(
    (
        p
        for p in (
            SPEC_PATH,
            REPO.parents[1] / "shared" / SPEC_PATH.relative_to(SPEC_PATH.parents[2]),
        )
        if p.exists()
    ),
    SPEC_PATH,
)

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.ebpf,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.environ.get("BPFSLEUTH_TEST_DEPLOY") != "1",
        reason="builds images and starts containers: run `make test-deploy`",
    ),
]


def doc_block(name: str) -> list[str]:
    """The shell lines of the block marked `<!-- deploy-test: NAME -->` in docs/deploy.md."""
    found = re.search(rf"<!-- deploy-test: {name} -->\n```sh\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"docs/deploy.md has no block {name!r}"
    return [line for line in found.group(1).splitlines() if line.strip()]


def timings() -> dict[str, object]:
    return {"load_average": Path("/proc/loadavg").read_text().split()[:3]}


@dataclass
class Stack:
    env: dict[str, str]
    project: str
    host: str
    redis_url: str
    slack: FakeSlackApi
    requests: SlackRequests
    figures: dict[str, object]

    def run_block(self, name: str, timeout: float = 900.0) -> float:
        started = time.monotonic()
        for line in doc_block(name):
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", line],
                cwd=REPO,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            assert done.returncode == 0, (
                f"`{line}` (docs/deploy.md, {name}) exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return round(time.monotonic() - started, 1)

    def output_of(self, name: str) -> str:
        out = []
        for line in doc_block(name):
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", line],
                cwd=REPO,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"`{line}`: {done.stdout[-2000:]}{done.stderr[-2000:]}"
            out.append(done.stdout)
        return "\n".join(out)

    def podman(self, *args: str) -> str:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=io.podman.compose.project={self.project}"
        return {
            "containers": self.podman(
                "ps", "-a", "--filter", label, "--format", "{{.Names}}"
            ).split(),
            "pods": [
                p
                for p in self.podman("pod", "ls", "--format", "{{.Name}}").split()
                if self.project in p
            ],
            "networks": [
                n
                for n in self.podman("network", "ls", "--format", "{{.Name}}").split()
                if n.startswith(self.project)
            ],
            "volumes": [
                v
                for v in self.podman("volume", "ls", "--format", "{{.Name}}").split()
                if v.startswith(self.project)
            ],
        }

    def logs(self) -> str:
        done = subprocess.run(
            [str(REPO / "scripts" / "compose.sh"), "logs"],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return (done.stdout + done.stderr)[-8000:]


def _wait(predicate, timeout: float, what: str, stack: Stack | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the stack is still starting: connection refused etc.
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1.0)
    logs = stack.logs() if stack else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{logs}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    tag = secrets.token_hex(3)
    project = f"bpfsleuth-test-{tag}"
    host = f"box-{tag}"
    redis_port, bot_port = free_port(), free_port()
    signing_secret = secrets.token_hex(16)
    slack = FakeSlackApi(
        bind="0.0.0.0", channels={f"C0D{tag.upper()}": f"inc-{tag}"}, spec_path=SPEC
    ).start()
    slack_port = slack.base.rsplit(":", 1)[1]
    slack_from_containers = f"http://host.containers.internal:{slack_port}"
    env = {
        **os.environ,
        # podman on hosts like this one (hybrid cgroups, no CAP_SYS_RESOURCE): docs/deploy.md
        "CONTAINERS_CONF": os.environ.get(
            "CONTAINERS_CONF", str(REPO / "deploy" / "podman" / "containers.conf")
        ),
        "COMPOSE_PROJECT_NAME": project,
        "BPFSLEUTH_HOST": host,
        "BPFSLEUTH_REDIS_PORT": str(redis_port),
        "BPFSLEUTH_BOT_PORT": str(bot_port),
        "BPFSLEUTH_BOT_BIND": "127.0.0.1",
        "SLACK_BOT_TOKEN": f"xoxb-{secrets.token_hex(8)}",
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": f"{slack_from_containers}/api/",
        "BPFSLEUTH_CHANNELS": "inc-*",
        "BPFSLEUTH_USERS": "U0ALICE",
        "BPFSLEUTH_RESPONDERS": "U0ALICE",
        "BPFSLEUTH_MODEL": "offline",
    }
    for name in ("ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    figures: dict[str, object] = {}
    made = Stack(
        env=env,
        project=project,
        host=host,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        slack=slack,
        requests=SlackRequests(
            f"http://127.0.0.1:{bot_port}/slack/events",
            signing_secret,
            response_base=slack_from_containers,
        ),
        figures=figures,
    )
    try:
        figures["images_s"] = made.run_block("images", timeout=1500)
        figures["images"] = timings()
        started = time.monotonic()
        made.run_block("up")
        _wait(lambda: _live(made), READY_TIMEOUT_S, f"host {host} in the registry", made)
        _wait(
            lambda: (
                made.requests.slash_command("help", channel_id="C0X", channel_name="inc-x").status
                == 200
            ),
            READY_TIMEOUT_S,
            "the bot's HTTP port",
            made,
        )
        figures["stack_start_s"] = round(time.monotonic() - started, 1)
        figures["stack_start"] = timings()
        yield made
    finally:
        try:
            figures["down_s"] = made.run_block("down")
        finally:
            subprocess.run(
                f"podman volume ls -q | grep '^{project}_' | xargs -r podman volume rm -f",
                shell=True,
                env=env,
                capture_output=True,
                timeout=120,
            )
            slack.stop()
            out = Path(os.environ.get("BPFSLEUTH_DEPLOY_FIGURES", tempfile.gettempdir()))
            (out / "bpfsleuth-deploy-figures.json").write_text(json.dumps(figures, indent=2))
            print(f"deploy figures: {json.dumps(figures)}")


def _live(stack: Stack) -> bool:
    from worker.distributed.registry import Registry

    return stack.host in [r.name for r in Registry.from_url(stack.redis_url).live_hosts()]


def _resolution_card(stack: Stack, channel: str, investigation_id: str) -> Message | None:
    slack = stack.slack
    root = next((m for m in slack.channel_roots(channel) if investigation_id in all_text(m)), None)
    if root is None:
        return None
    return next((m for m in slack.thread(channel, root.ts) if "dig_deeper" in buttons(m)), None)


def _evidence_section(card: Message) -> str:
    for block in card.blocks:
        text = str((block.get("text") or {}).get("text", ""))
        if text.startswith("*eBPF evidence*"):
            return text
    return ""


def test_the_docs_stack_diagnoses_a_real_fault_with_ebpf_from_the_host_worker_container(
    stack: Stack,
) -> None:
    checked = stack.output_of("check")
    for row in ("root", "privileges", "tracefs", "bcc", "bpf tracepoint"):
        assert re.search(rf"│ {row}\s+│ ok ", checked), f"doctor's {row}:\n{checked}"
    assert stack.host in checked, "`hosts` lists the containerised host worker"
    tag = stack.project.rsplit("-", 1)[1]
    channel, channel_name = f"C0D{tag.upper()}", f"inc-{tag}"
    with (
        host_turn(),
        tempfile.TemporaryDirectory(prefix="w", dir="/tmp") as tmp,
        refused_connects(Path(tmp)) as fault,
    ):
        started = time.monotonic()
        sent = stack.requests.slash_command(
            f"{stack.host} {SYMPTOM}", channel_id=channel, channel_name=channel_name
        )
        assert sent.status == 200 and sent.elapsed_s < 3.0, sent.body
        found = re.search(r"Investigation `([0-9a-f]+)` started", sent.json()["text"])
        assert found, sent.body
        investigation_id = found.group(1)
        card = _wait(
            lambda: _resolution_card(stack, channel, investigation_id),
            RESOLVED_TIMEOUT_S,
            "the resolution card in the thread",
            stack,
        )
        stack.figures["diagnose_s"] = round(time.monotonic() - started, 1)
        stack.figures["diagnose"] = timings()
        assert fault.alive(), "the fault ran for the whole investigation"
        truth = fault.truth()
    text = all_text(card)
    evidence = _evidence_section(card)
    assert truth.missing(text) == [], f"the card does not name {truth.missing(text)}:\n{text}"
    assert evidence, f"no eBPF evidence section:\n{text}"
    assert truth.missing(evidence) == [], f"evidence lacks {truth.missing(evidence)}:\n{evidence}"

    from worker.distributed.store import Store

    store = Store(stack.redis_url, ttl_s=3600)
    stored = store.load(investigation_id).investigation
    assert stored.hosts == [stack.host]
    probes = [p for r in stored.results for p in r.ebpf_results.values()]
    assert probes and any(p.error is None for p in probes), "eBPF results from the container"
    before = stored.model_dump_json()

    # Redis restarts (docs: restart-redis): the investigation is intact, everything reconnects.
    started = time.monotonic()
    stack.run_block("restart-redis")
    reloaded = _wait(
        lambda: Store(stack.redis_url, ttl_s=3600).load(investigation_id),
        60,
        "Redis back with the investigation",
        stack,
    )
    assert reloaded.investigation.model_dump_json() == before
    _wait(lambda: _live(stack), 90, "the host worker's heartbeat after the restart", stack)
    hosts = _wait(
        lambda: (
            (
                s := stack.requests.slash_command(
                    "hosts", channel_id=channel, channel_name=channel_name
                )
            )
            and stack.host in s.body
            and s
        ),
        90,
        "the bot answering `/diagnose hosts` after the restart",
        stack,
    )
    assert hosts.status == 200
    stack.figures["redis_restart_s"] = round(time.monotonic() - started, 1)


def test_a_host_worker_container_without_privileges_says_so_in_doctor_and_hosts(
    stack: Stack,
) -> None:
    image = "localhost/bpfsleuth:latest"
    doctor = json.loads(stack.podman("run", "--rm", "--network", "none", image, "doctor", "--json"))
    [check] = [c for c in doctor["checks"] if c["name"] == "privileges"]
    assert check["status"] == "missing" and "CAP_BPF" in check["detail"], check
    assert "privileged" in check["fix"]
    name = f"nopriv-{secrets.token_hex(3)}"
    container = stack.podman(
        "run",
        "-d",
        "--rm",
        "--network",
        "host",
        "-e",
        f"REDIS_URL={stack.redis_url}",
        "-e",
        f"BPFSLEUTH_HOST={name}",
        image,
        "worker",
        "--host",
        name,
    ).strip()
    try:

        def row() -> dict[str, object] | None:
            listed = stack.podman("exec", container, "bpfsleuth", "hosts", "--json")
            return next((r for r in json.loads(listed) if r["name"] == name), None)

        found = _wait(row, 90, f"{name} in `hosts`", stack)
        assert found["missing_privileges"] == ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"]
        table = stack.podman("exec", "-e", "COLUMNS=250", container, "bpfsleuth", "hosts")
        assert "lacks CAP_BPF" in table, table
    finally:
        subprocess.run(["podman", "rm", "-f", container], env=stack.env, capture_output=True)


@pytest.mark.parametrize(
    ("dockerfile", "context", "step", "needed"),
    [
        ("Dockerfile", ".", "build: apt-get install python3-venv", "Debian's package registry"),
        (
            "deploy/redis/Dockerfile",
            "deploy/redis",
            "apt-get install redis-server",
            "Debian's package registry",
        ),
    ],
)
def test_a_build_without_network_says_which_step_needed_what(
    stack: Stack, dockerfile: str, context: str, step: str, needed: str
) -> None:
    tag = f"localhost/bpfsleuth-nonet-{secrets.token_hex(3)}"
    done = subprocess.run(
        [
            "podman",
            "build",
            "--pull=never",
            "--no-cache",
            "--network",
            "none",
            "-t",
            tag,
            "-f",
            dockerfile,
            context,
        ],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    subprocess.run(["podman", "rmi", "-f", tag], env=stack.env, capture_output=True)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert f"step '{step}' needs {needed}" in said, said[-3000:]
    assert "is the build's network up?" in said


def test_the_stack_comes_down_with_nothing_left_behind(stack: Stack) -> None:
    """Runs last in this module: docs' `down`, then the volumes (the fixture's teardown does
    both again harmlessly)."""
    stack.run_block("down")
    subprocess.run(
        f"podman volume ls -q | grep '^{stack.project}_' | xargs -r podman volume rm -f",
        shell=True,
        env=stack.env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert stack.leftovers() == {"containers": [], "pods": [], "networks": [], "volumes": []}
