"""An approval request: the command, why the policy will not run it alone, Approve / Deny."""

from __future__ import annotations

from pydantic import BaseModel, Field
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.views.blocks import SlackMessage, context, finish, section
from bot.views.models import ApprovalView
from bot.views.mrkdwn import code_block, escape, fit

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"


class ApprovalKey(BaseModel):
    """What a button carries back: which command of which investigation."""

    investigation_id: str = Field(alias="i", max_length=64)
    step: int = Field(alias="s", ge=0)
    host: str = Field(alias="h", max_length=64)
    command_id: str = Field(alias="c", max_length=64)

    model_config = {"populate_by_name": True}

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)


def approval_key(view: ApprovalView) -> ApprovalKey:
    return ApprovalKey(
        investigation_id=view.investigation_id,
        step=view.step,
        host=view.host,
        command_id=view.command_id,
    )


def approval_message(view: ApprovalView) -> SlackMessage:
    where = f" on *{escape(view.host)}*" if view.host else ""
    lines = [f":raised_hand: *Approval needed*{where} (step {view.step})"]
    if view.reason:
        lines.append(f"Policy: {escape(fit(view.reason, 500))}")
    blocks: list[Block] = [section("\n".join(lines)), section(code_block(view.command, 2000))]
    if view.state == "pending":
        value = approval_key(view).encode()
        blocks.append(
            ActionsBlock(
                block_id=f"approval:{view.investigation_id}:{view.command_id}",
                elements=[
                    ButtonElement(
                        text="Approve",
                        action_id=APPROVE_ACTION,
                        value=value,
                        style="primary",
                        confirm=ConfirmObject(
                            title="Run this command?",
                            text=fit(
                                f"It runs once{' on ' + view.host if view.host else ''}.", 300
                            ),
                            confirm="Run it",
                            deny="Cancel",
                        ),
                    ),
                    ButtonElement(text="Deny", action_id=DENY_ACTION, value=value, style="danger"),
                ],
            )
        )
        wait = (
            f" The investigation goes on without it after {view.timeout_s:.0f}s."
            if view.timeout_s
            else ""
        )
        blocks.append(context(f"Only responders can decide.{wait}"))
    elif view.state == "expired":
        blocks.append(
            context(":hourglass: No decision in time; the investigation went on without it.")
        )
    else:
        icon = ":white_check_mark: Approved" if view.state == "approved" else ":no_entry: Denied"
        by = f" by <@{escape(view.decided_by)}>" if view.decided_by else ""
        blocks.append(context(f"{icon}{by}"))
    state = {"pending": "needs approval", "approved": "approved", "denied": "denied"}.get(
        view.state, "expired"
    )
    return finish(f"Command {state}: {view.command}", blocks)
