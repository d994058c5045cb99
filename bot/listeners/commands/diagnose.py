"""`/diagnose`: parse, check, enqueue, and acknowledge with an ephemeral reply (< 3 s).

The ack runs before the HTTP response (process_before_response): parsing, a Redis read or two
and the broker enqueue. Anything that calls Slack's Web API happens after the response, on the
services' background pool (the handoff) or in the progress consumer (the investigation).
"""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt import Ack, BoltContext

from bot.chat.diagnose_command import (
    CommandError,
    FlowCommand,
    HandoffCommand,
    HelpCommand,
    HostsCommand,
    InvestigateCommand,
    parse_diagnose,
)
from bot.chat.handoff import post_handoff
from bot.gateway import GatewayError
from bot.services import BotServices, services_of
from bot.store.threads import SlackThread
from bot.views.blocks import SlackMessage
from bot.views.help import error_message, help_message, notice_message
from bot.views.hosts import hosts_message
from bot.views.mrkdwn import escape
from worker.flows.loader import load_flows, unknown_flow_message

CAP_LOCK_WAIT_S = 1.5


def _reply(ack: Ack, message: SlackMessage) -> None:
    ack(response_type="ephemeral", **message.as_kwargs())


def _live_host_names(services: BotServices) -> list[str]:
    try:
        return [host.name for host in services.live_hosts()]
    except GatewayError:
        return []


def _check_cap(services: BotServices, channel_id: str) -> None:
    settings = services.settings
    running = services.threads.running_in_channel(channel_id)
    if len(running) >= settings.max_per_channel:  # only then: are they all still alive?
        running = services.threads.prune_silent(running, settings.silent_after_s)
    if len(running) >= settings.max_per_channel:
        ids = ", ".join(f"`{i}`" for i in running)
        raise CommandError(
            f"This channel already has {len(running)} investigations running ({ids}); "
            f"the limit is {settings.max_per_channel} (BPFSLEUTH_MAX_PER_CHANNEL). "
            "Wait for one to finish, or continue one in its thread."
        )


def _start(
    services: BotServices,
    command: dict[str, Any],
    parsed: InvestigateCommand | FlowCommand,
    flow: str | None = None,
) -> str:
    """Start the investigation; returns the ephemeral text. Raises GatewayError/CommandError.

    The cap check, the start and the registration run under a per-channel lock, so two
    requests arriving together cannot both take the last slot (other channels do not wait).
    """
    from redis.exceptions import LockError

    settings = services.settings
    channel_id = str(command["channel_id"])
    user_id = str(command["user_id"])
    hosts = parsed.hosts or settings.default_hosts or sorted(_live_host_names(services))
    if not hosts:
        raise CommandError(
            "No live hosts to investigate on. Start a worker on each host "
            "(`bpfsleuth worker`), then try again; `/diagnose hosts` lists them."
        )
    lock = services.threads.channel_lock(channel_id)
    if not lock.acquire(blocking=True, blocking_timeout=CAP_LOCK_WAIT_S):
        raise CommandError("This channel is busy starting another investigation; try again.")
    try:
        _check_cap(services, channel_id)
        investigation_id = services.gateway.start(
            parsed.symptom, hosts, asked_by=f"slack:{user_id}", flow=flow
        )
        services.threads.register(
            SlackThread(
                investigation_id=investigation_id,
                channel_id=channel_id,
                requested_by=user_id,
                symptom=parsed.symptom,
                hosts=hosts,
                response_url=command.get("response_url") or None,
            )
        )
    finally:
        with contextlib.suppress(LockError):
            lock.release()
    return (
        f":mag: Investigation `{investigation_id}` started on {escape(', '.join(hosts))}. "
        "I'm posting it in this channel; every step follows in its thread."
    )


def _start_flow(services: BotServices, command: dict[str, Any], parsed: FlowCommand) -> str:
    """Run a flow on the hosts' queues like a plan; its outputs follow in the thread."""
    flows = load_flows()
    if parsed.name not in flows:
        raise CommandError(unknown_flow_message(parsed.name, flows))
    text = _start(services, command, parsed, flow=parsed.name)
    return text.replace(":mag: Investigation", f":mag: Flow `{parsed.name}`: investigation", 1)


def acknowledge_diagnose(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    text = str(command.get("text") or "")
    try:
        parsed = parse_diagnose(text, _live_host_names(services))
        if isinstance(parsed, HelpCommand):
            _reply(ack, help_message())
        elif isinstance(parsed, HostsCommand):
            _reply(ack, hosts_message(services.live_hosts(fresh=True)))
        elif isinstance(parsed, HandoffCommand):
            _reply(ack, notice_message(":clipboard: Writing a handoff summary for this channel…"))
            services.background.submit(
                post_handoff,
                services,
                channel_id=str(command["channel_id"]),
                requested_by=str(command["user_id"]),
            )
        elif isinstance(parsed, FlowCommand):
            _reply(ack, notice_message(_start_flow(services, command, parsed)))
        else:
            _reply(ack, notice_message(_start(services, command, parsed)))
    except (CommandError, GatewayError) as exc:
        _reply(ack, error_message(escape(str(exc)) if isinstance(exc, GatewayError) else str(exc)))
