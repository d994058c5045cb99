"""`python -m bench.eval`: run the suite, print the table, write bench/results/eval.json.

Each (fault, mode, repeat) is one run: a fresh `Ctx` drawn from (seed, fault, mode, repeat);
with mode `noise` the noise starts first; the fault starts; the loop investigates a symptom
phrasing drawn for it; everything stops; the run is scored. One run at a time on the host
(tests/scenarios' host lock), since the faults are host-wide.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from bench.eval.catalog import BY_NAME, FAULTS
from bench.eval.draw import Draw
from bench.eval.harness import SETTLE_S, Ctx, FaultSpec
from bench.eval.noise import start_noise
from bench.eval.scoring import RunScore, score, totals
from bench.eval.timing import EventClock, step_timings
from bench.eval.warm import cool_down, warm_up
from tests.support.workloads.scenarios import SCENARIO_BUDGET_ITERATIONS, host_turn
from worker.backends.base import ModelBackend
from worker.backends.factory import build_backend
from worker.loop.investigation import Budgets
from worker.loop.run import run_investigation
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "eval.json"
MODES = {"off": ("quiet",), "on": ("noise",), "both": ("quiet", "noise")}


def run_one(
    spec: FaultSpec,
    mode: str,
    seed: int,
    repeat: int,
    backend: ModelBackend,
    *,
    max_iterations: int = SCENARIO_BUDGET_ITERATIONS,
    host: str | None = None,
    save: Path | None = None,
) -> RunScore:
    """One fault, one mode: start, investigate, stop (always), score."""
    draw = Draw(seed, f"{spec.name}:{mode}:{repeat}")
    base = {"scenario": spec.name, "area": spec.area, "mode": mode, "seed": seed}
    with host_turn(), Ctx(draw) as ctx:
        noise = start_noise(ctx) if mode == "noise" else {}
        try:
            fault = spec.start(ctx)
        except Exception as exc:  # a fault that cannot start here is reported, not fatal
            return RunScore(
                **base, symptom="", named=False, correct=False, confidence="", recall=0.0,
                iterations=0, wall_s=0.0, noise=noise, error=f"start: {type(exc).__name__}: {exc}",
            )  # fmt: skip
        ctx.settle(SETTLE_S)
        symptom = draw.choice(spec.phrasings).format(**fault.words)
        started = time.monotonic()
        clock = EventClock()
        try:
            inv = run_investigation(
                symptom,
                [host or socket.gethostname()],
                backend,
                budgets=Budgets(max_iterations=max_iterations),
                on_event=clock,
            )
        except Exception as exc:
            return RunScore(
                **base, symptom=symptom, named=False, correct=False, confidence="", recall=0.0,
                iterations=0, wall_s=round(time.monotonic() - started, 2), drawn=fault.drawn,
                noise=noise, error=f"loop: {type(exc).__name__}: {exc}",
            )  # fmt: skip
        wall = time.monotonic() - started
        note = "" if fault.alive() else "a fault process exited during the run"
        truth, facts = fault.truth(), fault.facts()
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        (save / f"{spec.name}-{mode}-{repeat}.json").write_text(inv.model_dump_json(indent=1))
    judged = score(inv, truth, facts, noise_comms=noise.get("comms", "").split())
    return RunScore(
        **base,
        symptom=symptom,
        wall_s=round(wall, 2),
        drawn=fault.drawn,
        noise=noise,
        note=note,
        steps=step_timings(inv, clock),
        **judged,  # type: ignore[arg-type]
    )


def per_scenario(runs: list[RunScore]) -> list[dict[str, object]]:
    rows = []
    for name in dict.fromkeys(r.scenario for r in runs):
        row: dict[str, object] = {"scenario": name, "area": runs[0].area}
        for mode in ("quiet", "noise"):
            mine = [r for r in runs if r.scenario == name and r.mode == mode]
            if not mine:
                continue
            row["area"] = mine[0].area
            row[mode] = {
                "named": f"{sum(r.named for r in mine)}/{len(mine)}",
                "confidence": ",".join(r.confidence or "-" for r in mine),
                "recall": round(statistics.mean(r.recall for r in mine), 2),
                "iterations": statistics.median(r.iterations for r in mine),
                "wall_s": round(statistics.median(r.wall_s for r in mine), 1),
            }
        rows.append(row)
    return rows


def table(runs: list[RunScore], title: str) -> Table:
    t = Table(title=title)
    for col in ("scenario", "area", "mode", "named", "conf", "recall", "iter", "wall s", "note"):
        t.add_column(col, justify="right" if col in {"recall", "iter", "wall s"} else "left")
    for r in runs:
        why = r.error or (
            "blamed noise" if r.blamed_noise else (r.note or ("" if r.named else r.root_cause[:70]))
        )
        t.add_row(
            r.scenario, r.area, r.mode, "[green]yes[/]" if r.named else "[red]no[/]",
            r.confidence or "-", f"{r.recall:.2f}", str(r.iterations), f"{r.wall_s:.1f}", why,
        )  # fmt: skip
    return t


def time_line(run: RunScore) -> str:
    """Per step: the model's answer, then the host's run (commands, compile, window, rest)."""
    parts = []
    for t in run.steps:
        part = f"{t.step}: model {t.model_s:.2f}"
        if t.run_s:
            part += (
                f" run {t.run_s:.1f} (cmds {t.commands_s:.1f} longest {t.longest_command_s:.1f}, "
                f"{t.probes} probes, compile "
                f"{t.compile_s:.1f}, window {t.window_s:.1f}, other {t.other_s:.1f}; phases: "
                f"commands {t.commands_phase_s:.1f}, to attach {t.to_attach_s:.1f}, after "
                f"probes {t.after_probes_s:.1f})"
            )
        parts.append(part)
    return " | ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__)
    p.add_argument("--model", default="offline", choices=("offline", "anthropic", "openai"))
    p.add_argument("--noise", default="both", choices=tuple(MODES))
    p.add_argument("--only", default="", help="comma-separated fault names")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=None, help="replay a run (printed at start)")
    p.add_argument("--max-iterations", type=int, default=SCENARIO_BUDGET_ITERATIONS)
    p.add_argument("--out", type=Path, default=None, help=f"default {RESULTS.relative_to(ROOT)}")
    p.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: every probe compiles on its first request (a fresh CLI process), "
        "instead of the catalog compiled ahead as a host worker does at start",
    )
    p.add_argument(
        "--save", type=Path, default=None, help="write each run's investigation (JSON) here"
    )
    p.add_argument("--list", action="store_true", help="list the faults and exit")
    return p.parse_args(argv)


def git_commit() -> str:
    """HEAD, with `+dirty` when the tree has uncommitted changes (what the run measured)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    return head + ("+dirty" if dirty else "")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(150, Console().width))
    if args.list:
        for f in FAULTS:
            console.print(f"{f.name:<22} {f.area:<12} {f.description}")
        return 0
    if os.geteuid() != 0:
        console.print("[red]the eval starts real faults and eBPF probes: run it as root[/]")
        return 2
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        console.print(f"[red]unknown faults: {unknown}; see --list[/]")
        return 2
    specs = [BY_NAME[n] for n in names] if names else FAULTS
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    backend = build_backend(WorkerSettings(), args.model)
    console.print(
        f"eval: seed {seed} ({len(specs)} faults x {MODES[args.noise]} x {args.repeat}, "
        f"model {args.model}); replay with --seed {seed}"
    )
    signal.signal(signal.SIGTERM, _interrupt)
    warm: dict[str, object] = {"cold": True}
    runs: list[RunScore] = []
    try:
        if not args.cold:
            console.print("eval: compiling the probe catalog ahead, as a host worker does")
            warm = warm_up()
            console.print(f"eval: warm-up {warm}")
        load_before = os.getloadavg()
        started = datetime.now(UTC)
        for repeat in range(args.repeat):
            for spec in specs:
                for mode in MODES[args.noise]:
                    run = run_one(
                        spec,
                        mode,
                        seed,
                        repeat,
                        backend,
                        max_iterations=args.max_iterations,
                        save=args.save,
                    )
                    runs.append(run)
                    mark = "[green]named[/]" if run.named else "[red]missed[/]"
                    console.print(
                        f"  {spec.name:<22} {mode:<6} {mark} {run.confidence or '-':<6} "
                        f"recall {run.recall:.2f} iter {run.iterations} {run.wall_s:.1f}s "
                        f"{run.error}"
                    )
                    if run.steps:
                        console.print(f"    time {time_line(run)}", markup=False, style="dim")
                    if not run.named and not run.error:
                        missing = run.missing_in_root_cause or run.missing_in_evidence
                        console.print(
                            f"    missing {missing} | {run.root_cause[:160]}",
                            markup=False,
                            style="dim",
                        )
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted after {len(runs)} runs; everything was stopped[/]")
        return 130
    finally:
        cool_down()
    summary = totals(runs)
    console.print(table(runs, f"eval, model {args.model}, seed {seed}"))
    console.print(summary)
    result = {
        "measured_at": started.isoformat(timespec="seconds"),
        "seed": seed,
        "model": args.model,
        "commit": git_commit(),
        "noise": args.noise,
        "repeat": args.repeat,
        "max_iterations": args.max_iterations,
        "warm_up": warm,
        "faults": len(specs),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "totals": summary,
        "per_scenario": per_scenario(runs),
        "runs": [r.model_dump() for r in runs],
    }
    out = args.out or (RESULTS if not names else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
