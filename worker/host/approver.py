"""Who approves a command the policy will not run on its own: a person at a TTY, nobody, or
(later) Slack buttons. The loop only sees the `Approver` seam."""

from __future__ import annotations

import sys
from typing import Protocol

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.prompt import Confirm


class ApprovalRequest(BaseModel):
    investigation_id: str = ""
    step: int = 0
    host: str = ""
    command_id: str
    command: str
    reason: str = ""


class ApprovalDecision(BaseModel):
    approved: bool
    by: str = ""
    note: str = ""


class Approver(Protocol):
    def decide(self, request: ApprovalRequest) -> ApprovalDecision: ...


class AutoDenyApprover:
    """Nobody is there to approve: commands that need approval are skipped and reported."""

    def __init__(self, why: str = "no approver (not a TTY)") -> None:
        self.why = why

    def decide(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(approved=False, by="auto-deny", note=self.why)


class TtyApprover:
    """Asks the person at the terminal; denies when stdin is not a TTY."""

    def decide(self, request: ApprovalRequest) -> ApprovalDecision:
        if not sys.stdin.isatty():
            return ApprovalDecision(approved=False, by="auto-deny", note="stdin is not a TTY")
        console = Console(stderr=True)
        console.print(
            f"[yellow]approval needed[/] for [bold]{escape(request.command_id)}[/] on "
            f"{escape(request.host or 'this host')}: [cyan]{escape(request.command)}[/]\n"
            f"  policy: {escape(request.reason)}",
            markup=True,
            highlight=False,
        )
        approved = Confirm.ask("Run it?", default=False, console=console)
        return ApprovalDecision(
            approved=approved, by="tty", note="approved at the terminal" if approved else "declined"
        )
