"""A rendered Slack message (fallback text + Block Kit blocks) and small block builders.

Every view returns a `SlackMessage` built through `finish`, which guarantees Slack's message
limits: at most 50 blocks, a non-empty text fallback, each section within 3,000 characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.views.mrkdwn import (
    CONTEXT_LIMIT,
    FALLBACK_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    escape,
    fit,
    plain,
)

MAX_BLOCKS = 50


class SlackMessage(BaseModel):
    """What chat.postMessage / chat.update / chat.postEphemeral take: `text` and `blocks`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    text: str = Field(min_length=1, max_length=FALLBACK_LIMIT)
    blocks: list[Block] = Field(default_factory=list, max_length=MAX_BLOCKS)

    def block_dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.block_dicts()}


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=plain(text, HEADER_LIMIT), emoji=True))


def section(mrkdwn: str, *, block_id: str | None = None) -> SectionBlock:
    """A section of already-escaped mrkdwn, fitted to the section limit."""
    return SectionBlock(
        text=MarkdownTextObject(text=fit(mrkdwn or " ", SECTION_LIMIT)), block_id=block_id
    )


def context(*mrkdwn: str) -> ContextBlock:
    parts = [fit(part, CONTEXT_LIMIT) for part in mrkdwn if part][:10] or [" "]
    return ContextBlock(elements=[MarkdownTextObject(text=part) for part in parts])


def divider() -> DividerBlock:
    return DividerBlock()


def sections_from_lines(lines: Iterable[str], limit: int = SECTION_LIMIT) -> list[SectionBlock]:
    """Pack escaped lines into as few sections as fit; a line longer than a section is cut."""
    out: list[SectionBlock] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        line = fit(raw, limit)
        extra = len(line) + (1 if current else 0)
        if current and size + extra > limit:
            out.append(section("\n".join(current)))
            current, size = [], 0
            extra = len(line)
        current.append(line)
        size += extra
    if current:
        out.append(section("\n".join(current)))
    return out


def finish(text: str, blocks: list[Block], *, cut_note: str = "") -> SlackMessage:
    """The message, with blocks beyond Slack's 50 replaced by one context line saying so.

    `text` is the raw fallback (notifications, screen readers): it is redacted and escaped here.
    """
    if len(blocks) > MAX_BLOCKS:
        kept = blocks[: MAX_BLOCKS - 1]
        dropped = len(blocks) - len(kept)
        note = f"_{dropped} more blocks not shown{'; ' + cut_note if cut_note else ''}._"
        blocks = [*kept, context(note)]
    fallback = fit(escape(" ".join(text.split())) or "bpfsleuth", FALLBACK_LIMIT)
    return SlackMessage(text=fallback, blocks=blocks)
