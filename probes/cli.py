"""`bpfsleuth probes ...`: list, show, resolve and run catalog probes. Heavy imports stay inside."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from probes.custom.loader import CustomProbe
    from probes.models import ProbeRequest, ProbeResult

app = typer.Typer(no_args_is_help=True, help="The eBPF probe catalog: list, show, resolve, run.")


@app.command("list")
def list_probes(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every catalog probe, whether it can run here, and what it answers."""
    from probes.catalog import load_catalog
    from probes.engine.plan import availability

    catalog = load_catalog()
    rows = [(catalog.probes[n], availability(catalog.probes[n])) for n in catalog.names()]
    if as_json:
        out = [
            {
                "name": spec.name,
                "source": catalog.source_of(spec.name),
                "description": spec.description,
                "overhead": spec.overhead,
                "available": avail.available,
                "reason": avail.reason,
                "answers": spec.answers,
                "duration": spec.duration.model_dump(),
            }
            for spec, avail in rows
        ]
        typer.echo(
            json.dumps(
                {
                    "probes": out,
                    "broken": catalog.broken,
                    "unapproved": catalog.blocked,
                    "sources": catalog.sources,
                },
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bpfsleuth probes")
    for column in ("probe", "here", "overhead", "source", "description"):
        table.add_column(column)
    for spec, avail in rows:
        here = "[green]yes[/]" if avail.available else f"[red]no[/] {avail.reason}"
        table.add_row(
            spec.name, here, spec.overhead, catalog.source_of(spec.name), spec.description
        )
    for name, reason in catalog.blocked.items():
        table.add_row(name, "[yellow]unapproved[/]", "", catalog.source_of(name), reason)
    for name, error in catalog.broken.items():
        table.add_row(name, "[red]broken[/]", "", catalog.source_of(name), error)
    Console().print(table)


@app.command()
def show(name: str = typer.Argument(..., help="Catalog probe name.")) -> None:
    """A probe's spec, where it would attach here, and its example output."""
    from probes.catalog import load_catalog
    from probes.engine.plan import availability
    from probes.resolver import nearest_names

    catalog = load_catalog()
    spec = catalog.get(name)
    if spec is None and name in catalog.blocked:
        typer.echo(f"{name} ({catalog.source_of(name)}): {catalog.blocked[name]}")
        raise typer.Exit(2)
    if spec is None:
        near = nearest_names(name, catalog.names())
        typer.echo(f"no probe named {name!r}" + (f"; nearest: {', '.join(near)}" if near else ""))
        raise typer.Exit(2)
    out = {
        "source": catalog.source_of(name),
        "spec": spec.model_dump(mode="json"),
        "here": availability(spec).model_dump(),
    }
    typer.echo(json.dumps(out, indent=2))


@app.command()
def resolve(
    request: str = typer.Argument(
        "", help="e.g. 'kprobe:tcp_connect' or 'syscalls/sys_enter_openat'"
    ),
    kind: str = typer.Option("", "--type", help="tracepoint|kprobe|kretprobe|uprobe|catalog"),
    target: str = typer.Option("", "--target", help="Target, with --type."),
) -> None:
    """Which probe would answer a request on this host, and why (exit 1 when refused)."""
    from probes.requests import normalise_answer, request_key
    from probes.resolver import resolve_key

    if kind and target:
        key = request_key(kind, target)
    elif request:
        key = normalise_answer(request)  # `kprobe:X`, `category/name`, `category:name`
    else:
        raise typer.BadParameter("give a request, or --type and --target")
    resolved = resolve_key(key)
    typer.echo(resolved.model_dump_json(indent=2))
    if not resolved.ok:
        raise typer.Exit(1)


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param takes key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


@app.command()
def run(
    name: str = typer.Argument(..., help="Catalog probe name."),
    duration: float | None = typer.Option(None, "--duration", "-d", help="Seconds."),
    pid: int | None = typer.Option(None, "--pid", help="Only this process (tgid)."),
    comm: str | None = typer.Option(None, "--comm", help="Only tasks with this comm."),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print the ProbeResult as JSON."),
) -> None:
    """Run one probe for a while and print its result."""
    from probes.params import ProbeRequestError

    request = _probe_request(name, duration, pid, comm, param)
    try:
        result = _run_with_progress(request)
    except ProbeRequestError as exc:
        typer.echo(f"cannot run: {exc}", err=True)
        raise typer.Exit(2) from None
    _print_result(result, as_json)
    if result.error:
        typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(1)
    sys.stdout.flush()


def _probe_request(
    name: str, duration: float | None, pid: int | None, comm: str | None, param: list[str]
) -> ProbeRequest:
    """The request as typed, validated (exit 2 with the first problem)."""
    from pydantic import ValidationError

    from probes.catalog import load_catalog
    from probes.models import ParamValue, ProbeFilters, ProbeRequest

    spec = load_catalog().get(name)
    params: dict[str, ParamValue] = dict(_parse_params(param))
    try:
        return ProbeRequest(
            probe=name,
            duration_s=duration if duration is not None else (spec.duration.default if spec else 5),
            filters=ProbeFilters(pid=pid, comm=comm),
            params=params,
        )
    except ValidationError as exc:
        typer.echo(
            f"invalid request: {exc.errors()[0]['loc'][-1]}: {exc.errors()[0]['msg']}", err=True
        )
        raise typer.Exit(2) from None


def _run_with_progress(request: ProbeRequest) -> ProbeResult:
    """Run the probe with a live line on stderr: its phase, then a countdown while it traces."""
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
    from rich.text import Text

    from probes.engine.runner import ProbeProgress, run_probe

    class SecondsLeft(ProgressColumn):
        """`4.2s left` once the probe is attached (its `ends_at`), nothing before."""

        def render(self, task: Task) -> Text:
            ends_at = task.fields.get("ends_at")
            if not isinstance(ends_at, float):
                return Text("")
            return Text(f"{max(0.0, ends_at - time.time()):4.1f}s left")

    name = request.probe
    columns = (SpinnerColumn(), TextColumn("{task.description}"), SecondsLeft())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"{name}: starting", ends_at=None)

        def on_progress(report: ProbeProgress) -> None:
            described = f"{name}: {report.phase} {report.detail[:80]}".rstrip()
            if report.ends_at:
                progress.update(task, description=described, ends_at=report.ends_at)
            else:
                progress.update(task, description=described)

        return run_probe(request, on_progress=on_progress)


def _print_result(result: ProbeResult, as_json: bool) -> None:
    from rich.console import Console

    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    out = Console()
    out.print(f"[bold]{result.summary}[/]")
    out.print(
        f"attached: {', '.join(result.attach_points)}; compile {result.compile_s:.2f}s; "
        f"dropped {result.dropped}"
    )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    out.print_json(result.aggregates.model_dump_json())


def _approver_name() -> str:
    import getpass

    from probes.settings import probe_settings

    return probe_settings().sudo_user or getpass.getuser()


@app.command()
def approve(
    name: str = typer.Argument(..., help="Custom probe name (a folder of BPFSLEUTH_PROBE_PATH)."),
    by: str = typer.Option("", "--by", help="Who approves (default: the login user)."),
    fleet: bool = typer.Option(
        False, "--fleet", help="Record the approval in Redis (REDIS_URL) for every host."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Approve a custom probe's exact content (sha256 of its folder) after reviewing it."""
    from pathlib import Path

    from probes.custom.approval import Approval, record_approval
    from probes.settings import probe_settings

    probe = _approvable(name)
    spec = probe.spec
    assert spec is not None
    fleet_url = probe_settings().redis_url if fleet else ""
    if fleet and not fleet_url:
        typer.echo("--fleet needs REDIS_URL", err=True)
        raise typer.Exit(2)
    _show_for_review(probe)
    status = probe.approval
    if status is not None and status.approved:
        typer.echo(f"already approved: {status.reason}")
        return
    if status is not None and status.approval is not None:
        typer.echo(f"note:              {status.reason}")
    if not yes:
        _confirm(name)
    approval = Approval(
        name=spec.name,
        sha256=probe.sha256,
        by=by or _approver_name(),
        overhead=spec.overhead,
        reads_user_memory=spec.reads_user_memory,
        max_duration_s=spec.duration.max,
    )
    try:
        where, place = record_approval(approval, Path(probe.directory), fleet_url=fleet_url or None)
    except Exception as exc:  # Redis unreachable, folder read-only
        typer.echo(f"could not record the approval: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"approved {name} sha256 {probe.sha256[:12]} by {approval.by} ({where}: {place})")


def _approvable(name: str) -> CustomProbe:
    """The valid custom probe `name`, or exit 2 saying why it cannot be approved."""
    from probes.catalog import load_builtin_catalog
    from probes.custom.loader import find_custom_probe

    builtin = load_builtin_catalog()
    probe = find_custom_probe(name, set(builtin.probes))
    if probe is None:
        if name in builtin:
            typer.echo(f"{name} is a built-in probe: it is approved by being part of the release")
        else:
            typer.echo(f"no custom probe named {name!r} in BPFSLEUTH_PROBE_PATH", err=True)
        raise typer.Exit(2)
    if not probe.valid or probe.spec is None:
        typer.echo(f"{name} cannot be approved; fix it first:", err=True)
        for error in probe.errors:
            typer.echo(f"  {error}", err=True)
        raise typer.Exit(2)
    return probe


def _show_for_review(probe: CustomProbe) -> None:
    """What a reviewer approves: the files and their hash, where it attaches, what it costs."""
    from probes.custom.approval import content_files

    spec = probe.spec
    assert spec is not None
    files = [str(p.relative_to(probe.directory)) for p in content_files(probe.directory)]
    typer.echo(f"custom probe:      {spec.name} ({probe.directory})")
    typer.echo(f"description:       {spec.description}")
    typer.echo(f"files:             {', '.join(files)}")
    typer.echo(f"sha256:            {probe.sha256}")
    typer.echo(f"attaches to:       {', '.join(p.label for g in spec.attach for p in g.any_of)}")
    typer.echo(f"overhead:          {spec.overhead}")
    typer.echo(f"reads user memory: {'YES' if spec.reads_user_memory else 'no'}")
    typer.echo(f"max duration:      {spec.duration.max:g} s")
    for warning in probe.warnings:
        typer.echo(f"warning:           {warning}")


def _confirm(name: str) -> None:
    """Ask on a terminal (exit 2 when there is none, 1 when the answer is no)."""
    if not sys.stdin.isatty():
        typer.echo("approval asks for confirmation on a terminal; pass --yes to skip", err=True)
        raise typer.Exit(2)
    if not typer.confirm(f"Approve this exact content of {name}?", default=False):
        typer.echo("not approved")
        raise typer.Exit(1)
