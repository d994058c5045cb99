"""`bpfsleuth flows ...`: list, show and run flows (runbooks as YAML). Heavy imports inside."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Flows (runbooks as YAML): list, show, run.")


@app.command("list")
def list_flows(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every flow, where it comes from, what it runs; broken flow files with their error."""
    from worker.flows.loader import load_flows

    flows = load_flows()
    if as_json:
        out = [
            {
                "name": flow.name,
                "source": flows.source_of(flow.name),
                "description": flow.description,
                "categories": flow.categories,
                "probes": [s.probe for s in flow.sensors],
                "commands": [s.id for s in flow.commands],
                "analyzers": [a for s in flow.analyses for a in s.analyzers],
            }
            for flow in (flows.flows[n] for n in flows.names())
        ]
        typer.echo(json.dumps({"flows": out, "broken": flows.broken}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bpfsleuth flows")
    for column in ("flow", "source", "steps", "description"):
        table.add_column(column)
    for name in flows.names():
        flow = flows.flows[name]
        steps = f"{len(flow.commands)} cmd, {len(flow.sensors)} probe, {len(flow.analyses)} analyse"
        table.add_row(name, flows.source_of(name), steps, flow.description)
    for name, error in flows.broken.items():
        table.add_row(name, "[red]broken[/]", "", error)
    Console().print(table)


@app.command()
def show(name: str = typer.Argument(..., help="Flow name.")) -> None:
    """A flow's steps as validated (JSON)."""
    from worker.flows.loader import load_flows, unknown_flow_message

    flows = load_flows()
    flow = flows.get(name)
    if flow is None:
        typer.echo(unknown_flow_message(name, flows), err=True)
        raise typer.Exit(2)
    data = {
        "name": flow.name,
        "source": flows.source_of(name),
        "path": str(flow.path),
        **flow.model_dump(mode="json", by_alias=True, exclude={"name"}),
    }
    typer.echo(json.dumps(data, indent=2))


def _print_run_line(name: str, line: str) -> None:
    typer.echo(f"{name}: {line}", err=True)


@app.command()
def run(
    name: str = typer.Argument(..., help="Flow name."),
    host: str = typer.Option(
        "", "--host", help="Run on these hosts' workers through Celery (comma-separated)."
    ),
    symptom: str = typer.Option("", "--symptom", help="What is wrong (for the analyzers)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outputs as JSON."),
) -> None:
    """Run a flow: here (sensors concurrently, commands, analyses), or on --host workers."""
    from worker.flows.loader import load_flows, unknown_flow_message

    flows = load_flows()
    flow = flows.get(name)
    if flow is None:
        typer.echo(unknown_flow_message(name, flows), err=True)
        raise typer.Exit(2)
    if host:
        _run_on_hosts(name, [h.strip() for h in host.split(",") if h.strip()], symptom, as_json)
        return
    from worker.flows.run import SavedOutput, run_flow

    def on_output(saved_as: str, saved: SavedOutput) -> None:
        if not as_json:
            _print_run_line(saved_as, saved.line())

    result = run_flow(flow, symptom=symptom, on_output=on_output)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    findings = result.findings
    if findings:
        best = findings[0]
        typer.echo(f"finding ({best.analyzer}, score {best.score:.2f}): {best.root_cause}")
        if best.ebpf_evidence:
            typer.echo(f"evidence: {best.ebpf_evidence}")
    else:
        typer.echo(f"flow {name}: nothing stands out in {len(result.outputs)} outputs")


def _run_on_hosts(name: str, hosts: list[str], symptom: str, as_json: bool) -> None:
    from rich.console import Console

    from worker.cli.terminal_view import TerminalView
    from worker.distributed.follow import FollowError, run_via_celery
    from worker.distributed.registry import HostNotLive

    console = Console(stderr=True)
    view = TerminalView(console)
    console.print(f"[bold]bpfsleuth[/] running flow {name} on {', '.join(hosts)} through Celery")
    try:
        inv = run_via_celery(symptom or f"flow {name}", hosts, view, flow=name)
    except (HostNotLive, FollowError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        view.close()
    if as_json:
        typer.echo(inv.model_dump_json(indent=2))
    elif inv.resolution is not None:
        typer.echo(f"{inv.resolution.confidence}: {inv.resolution.root_cause}")
