"""Progress events rendered in a terminal with rich: steps, verdicts, probes with a live
countdown, findings, and the resolution panel. Host text is never read as rich markup."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.live import Live
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from worker.loop.events import (
    CommandFinished,
    CommandVerdict,
    Findings,
    Notice,
    ProbeFinished,
    ProbeRefused,
    ProbeStarted,
    ProgressEvent,
    ResolutionReached,
    StepStarted,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

_VERDICT_STYLE = {
    "allow": ("green", "allow"),
    "deny": ("red", "deny"),
    "needs_approval": ("yellow", "needs approval"),
}
_CONFIDENCE_STYLE = {"High": "green", "Medium": "yellow", "Low": "red"}


class _Countdown:
    """Re-rendered by rich's refresh thread: one line per running probe, seconds left."""

    def __init__(self) -> None:
        self.ends: dict[str, tuple[str, float]] = {}

    def __rich__(self) -> RenderableType:
        now = time.time()
        text = Text()
        for name, (label, ends_at) in self.ends.items():
            left = max(ends_at - now, 0.0)
            text.append(f"  ⏱ {name}", style="cyan")
            text.append(f" on {label}: {left:4.1f} s left\n", style="dim")
        return text


class TerminalView:
    """An event sink: call it with each ProgressEvent."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.countdown = _Countdown()
        self.live: Live | None = None

    def __call__(self, event: ProgressEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _line(self, *parts: tuple[str, str] | str) -> None:
        self.console.print(Text.assemble(*parts), highlight=False)

    def _on_step_started(self, event: StepStarted) -> None:
        title = f"step {event.step}" + (" (last)" if event.final else "")
        self.console.print(Rule(title, align="left"))
        if event.reasoning:
            self._line((event.reasoning, "italic"))
        for command in event.commands:
            self._line("  $ ", (command.command, "bold"), (f"  {command.description}", "dim"))
        for program in event.ebpf_programs:
            self._line(
                "  ◉ ",
                (program.name, "bold cyan"),
                f" {program.type}:{program.target} for {program.duration:g} s",
                (f"  {program.description}", "dim"),
            )
        for repeat in event.repeats:
            self._line(
                ("  ↺ not run again: ", "yellow"),
                f"{repeat.request} (ran in step {repeat.first_step})",
            )

    def _on_command_verdict(self, event: CommandVerdict) -> None:
        style, label = _VERDICT_STYLE[event.verdict]
        self._line(
            "  ",
            (f"[{label}]", style),
            f" {event.id}: ",
            (event.command, "bold"),
            (f"  {event.reason}" if event.verdict != "allow" else "", "dim"),
        )

    def _on_command_finished(self, event: CommandFinished) -> None:
        if event.ran:
            self._line(("    → ", "dim"), f"exit {event.exit_code} in {event.duration_s:.2f} s")
        else:
            self._line(("    → not run: ", "yellow"), event.note)

    def _on_probe_started(self, event: ProbeStarted) -> None:
        where = ", ".join(event.attach_points) or event.probe
        mapped = f" (asked {event.requested})" if event.requested else ""
        self._line(
            "  ◉ ", (event.name, "bold cyan"), f" attached: {event.probe} on {where}{mapped}"
        )
        ends_at = event.ends_at or time.time() + event.duration_s
        self.countdown.ends[event.name] = (where, ends_at)
        if self.live is None:
            self.live = Live(
                self.countdown, console=self.console, refresh_per_second=4, transient=True
            )
            self.live.start()

    def _probe_done(self, name: str) -> None:
        self.countdown.ends.pop(name, None)
        if not self.countdown.ends:
            self.close()

    def _on_probe_finished(self, event: ProbeFinished) -> None:
        self._probe_done(event.name)
        if event.error:
            self._line("  ◉ ", (event.name, "bold cyan"), (f" failed: {event.error}", "red"))
        else:
            self._line("  ◉ ", (event.name, "bold cyan"), f": {event.summary}")

    def _on_probe_refused(self, event: ProbeRefused) -> None:
        self._line(
            "  ✗ ", (event.name, "bold"), f" {event.requested} refused: ", (event.reason, "yellow")
        )

    def _on_findings(self, event: Findings) -> None:
        if not event.lines:
            return
        self._line(("  findings", "bold"), f" on {event.host}:")
        for line in event.lines:
            self._line("    • ", line)

    def _on_notice(self, event: Notice) -> None:
        self._line(("  ! ", "yellow"), event.message)

    def _on_resolution(self, event: ResolutionReached) -> None:
        self.close()
        res = event.resolution
        style = _CONFIDENCE_STYLE[res.confidence]
        body = Text()
        body.append("Root cause\n", style="bold")
        body.append(res.root_cause + "\n\n")
        body.append("Plan\n", style="bold")
        body.append(res.resolution_plan + "\n\n")
        body.append("eBPF evidence\n", style="bold")
        body.append((res.ebpf_evidence or "none") + "\n")
        if event.source == "synthesised":
            body.append(f"\n(synthesised from the evidence: {event.stop_reason})", style="dim")
        title = f"resolution: confidence {res.confidence}"
        self.console.print(Panel(body, title=title, border_style=style, title_align="left"))
