"""`/diagnose help` and error replies."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.views.blocks import SlackMessage, context, finish, section

HELP_LINES = (
    "*`/diagnose [host,host] <symptom>`* starts an investigation: a model plans read-only "
    "commands and eBPF probes, the hosts run them, and the answer lands in a thread here.",
    "*`/diagnose hosts`* lists live hosts with their kernel and eBPF capabilities.",
    "*`/diagnose flow <name> [host,host]`* runs a flow (a runbook as YAML: `bpfsleuth flows "
    "list`) on the hosts and posts its outputs in a thread.",
    "*`/diagnose handoff`* posts a summary of this channel's investigations for the next "
    "person on call.",
    "*`/diagnose help`* shows this.",
    "In an investigation's thread, mention me with a question (`@bpfsleuth why DNS?`) or a "
    "request (`@bpfsleuth check db-1 too`) to continue it.",
)


def help_message() -> SlackMessage:
    blocks: list[Block] = [section(line) for line in HELP_LINES]
    blocks.append(
        context("Example: `/diagnose web-1 app randomly fails to connect to the database`")
    )
    return finish("bpfsleuth: /diagnose [host,host] <symptom> | hosts | handoff | help", blocks)


def error_message(problem: str) -> SlackMessage:
    """An ephemeral refusal: what is wrong and what to do (`problem` is our own mrkdwn)."""
    return finish(problem, [section(f":warning: {problem}")])


def notice_message(text: str) -> SlackMessage:
    """An ephemeral notice built from our own mrkdwn."""
    return finish(text, [section(text)])
