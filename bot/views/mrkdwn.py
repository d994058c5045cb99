"""Escaping and fitting text for Slack's mrkdwn, within Slack's limits.

Slack wants `&`, `<` and `>` escaped in any text it parses (they start links and mentions, so
a model writing `<!channel>` would page the whole channel), and cuts nothing for us: a section
over 3,000 characters is refused. `fit` truncates already-escaped text without splitting an
entity such as `&amp;`. Every text from outside (the model, command output, a user) passes
through `escape`, which also redacts secrets (docs/architecture.md §5) before they reach Slack.
"""

from __future__ import annotations

from worker.host.redact import redact

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
CONTEXT_LIMIT = 3000
FALLBACK_LIMIT = 3000
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Secrets redacted, then the three characters Slack treats as control characters escaped."""
    return redact(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """`text` cut to at most `limit` characters, ending with `marker` when cut.

    Never leaves half an entity (`&am`) at the cut.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(marker))]
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:] and amp >= len(cut) - 6:
        cut = cut[:amp]
    return cut + marker


def plain(text: str, limit: int) -> str:
    """Text for a plain_text object (not parsed by Slack, so only redacted), fitted."""
    return fit(" ".join(redact(text).split()), limit)


def inline_code(text: str, limit: int = 200) -> str:
    """`text` as inline code: escaped, on one line, backticks neutralised, fitted."""
    body = fit(escape(" ".join(text.split()).replace("`", "'")), max(4, limit - 2))
    return f"`{body}`"


def code_block(text: str, limit: int) -> str:
    """A fenced block of escaped text that fits in `limit` characters, tail cut when long."""
    fence = "```"
    body = escape(text.replace(fence, "'''")).rstrip("\n") or " "
    room = limit - 2 * len(fence) - 2
    body = fit(body, room, marker="\n" + ELLIPSIS + " (cut)")
    return f"{fence}\n{body}\n{fence}"


def quote(text: str, limit: int) -> str:
    """Escaped text as a block quote, fitted."""
    lines = escape(text).splitlines() or [""]
    return fit("\n".join(f"> {line}" for line in lines), limit)
