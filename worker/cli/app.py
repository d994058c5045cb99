"""The worker's commands of the `bpfsleuth` CLI: their options here, their work in one module
each (`doctor`, `diagnose` (and `demo`), `exec`, `workers`), imported when the command runs so
that `bpfsleuth probes ...` pays for none of them (start-up cost: the one place imports wait)."""

from __future__ import annotations

import json
import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


class ModelChoice(StrEnum):
    auto = "auto"
    offline = "offline"
    anthropic = "anthropic"
    openai = "openai"


class Via(StrEnum):
    process = "process"
    celery = "celery"


class Pool(StrEnum):
    prefork = "prefork"
    solo = "solo"
    threads = "threads"


class SchemaPart(StrEnum):
    all = "all"
    reply = "reply"
    plan_result = "plan_result"


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    refresh: bool = typer.Option(False, "--refresh", help="Measure again, ignoring the cache."),
) -> None:
    """What this host can do, what is missing, and the fix for each."""
    from worker.cli.doctor import print_doctor

    print_doctor(as_json, refresh)


@app.command()
def schema(
    part: SchemaPart = typer.Option(SchemaPart.all, help="Which part of the protocol."),
) -> None:
    """Print the protocol's JSON Schema."""
    from worker.protocol import PlanResult, protocol_json_schema, reply_json_schema

    if part is SchemaPart.reply:
        out = reply_json_schema()
    elif part is SchemaPart.plan_result:
        out = PlanResult.model_json_schema()
    else:
        out = protocol_json_schema()
    typer.echo(json.dumps(out, indent=2))


# --- distributed loop: `worker` and `hosts` ---------------------------------------------------
@app.command()
def worker(
    host: str | None = typer.Option(
        None, "--host", help="Run plans for this host name (queue host.NAME) and heartbeat."
    ),
    control: bool = typer.Option(
        False, "--control", help="Run the control queue (advance steps, model calls)."
    ),
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, max=64),
    pool: Pool = typer.Option(
        Pool.prefork, "--pool", help="prefork (time limits enforced), solo or threads."
    ),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
) -> None:
    """Start a Celery worker: a host worker (--host NAME), the control worker, or both."""
    if not host and not control:
        raise typer.BadParameter("pass --host NAME, --control, or both")
    if host is not None and not host.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise typer.BadParameter("host names are letters, digits, '-', '_' and '.'")
    from worker.metrics_env import prepare

    # before prometheus_client is imported: the pool children write to one multiprocess dir
    metrics = prepare()
    from worker.cli.workers import start_worker
    from worker.distributed.roles import WorkerRole

    start_worker(
        WorkerRole(host=host, control=control),
        concurrency=concurrency,
        pool=pool.value,
        loglevel=loglevel,
        metrics=metrics,
    )


@app.command()
def hosts(
    as_json: bool = typer.Option(False, "--json", help="Print the hosts as JSON."),
) -> None:
    """Live hosts: heartbeat age, kernel and eBPF capabilities."""
    from worker.cli.workers import print_hosts

    print_hosts(as_json)


@app.command()
def diagnose(
    symptom: str = typer.Argument(..., help="What is wrong, in words."),
    model: ModelChoice = typer.Option(
        ModelChoice.auto,
        "--model",
        help="offline | anthropic | openai (auto: from the environment).",
    ),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", min=1, max=20, help="Model steps before a final answer."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the resolution and the transcript as JSON on stdout."
    ),
    host: str | None = typer.Option(
        None, "--host", help="Name this host in the investigation (default BPFSLEUTH_HOST)."
    ),
    via: Via = typer.Option(
        Via.process, "--via", help="process (run here) | celery (through Redis to host workers)."
    ),
    hosts: str | None = typer.Option(
        None, "--hosts", help="With --via celery: comma-separated host workers, e.g. web-1,db-1."
    ),
) -> None:
    """Investigate a symptom on this host: commands and eBPF probes until a resolution."""
    from worker.cli.diagnose import diagnose as run_diagnose

    run_diagnose(
        symptom,
        model=model.value,
        max_iterations=max_iterations,
        as_json=as_json,
        host=host,
        via=via.value,
        hosts=hosts,
    )


@app.command()
def demo(
    max_iterations: int = typer.Option(4, "--max-iterations", min=2, max=20),
) -> None:
    """A short demo: a client that cannot reach its backend starts, `diagnose` runs offline
    against it on this host, the resolution is printed, and the client is stopped."""
    from worker.cli.diagnose import demo as run_demo

    run_demo(max_iterations)


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def eval_command(ctx: typer.Context) -> None:
    """Run the fault eval (bench/eval in a source checkout): real faults on this host, scored.
    Every option goes to `python -m bench.eval` (try `bpfsleuth eval --help`)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "eval" / "__main__.py").exists():
        typer.echo("the eval lives in the source tree (bench/eval): run it from a clone", err=True)
        raise typer.Exit(2)
    done = subprocess.run([sys.executable, "-m", "bench.eval", *ctx.args], cwd=root, check=False)
    raise typer.Exit(done.returncode)


@app.command("exec")
def exec_command(
    command: list[str] = typer.Argument(
        ..., help="The command line, one quoted argument: -- 'ss -tlnp | grep :5432'"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the verdict."),
    as_json: bool = typer.Option(False, "--json", help="Print the CommandResult as JSON."),
    approved: bool = typer.Option(
        False, "--approved", help="Run a needs_approval command (as an approver would)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, max=60, help="Seconds (default from settings, max 60)."
    ),
) -> None:
    """Judge a command under the policy and, unless --dry-run, run it if allowed.

    Exit codes: 0 allowed (and ran, or would run), 1 allowed but could not start,
    3 needs approval, 4 denied.
    """
    from worker.cli.exec import run_exec

    run_exec(command, dry_run=dry_run, as_json=as_json, approved=approved, timeout=timeout)
