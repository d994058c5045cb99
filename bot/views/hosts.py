"""`/diagnose hosts`: live hosts, their kernel and what eBPF they can do."""

from __future__ import annotations

from bot.views.blocks import SlackMessage, context, finish, header, section, sections_from_lines
from bot.views.mrkdwn import escape
from worker.distributed.registry import HostRow

MAX_HOSTS_SHOWN = 200


def _host_line(host: HostRow) -> str:
    kinds = ", ".join(host.program_types) or "none"
    line = f"• *{escape(host.name)}* — kernel `{escape(host.kernel or '?')}`; eBPF: {escape(kinds)}"
    if host.missing_program_types:
        line += f"; no {escape(', '.join(host.missing_program_types))}"
    line += f" _(seen {host.heartbeat_age_s:.0f}s ago)_"
    return line


def hosts_message(hosts: list[HostRow]) -> SlackMessage:
    if not hosts:
        return finish(
            "No live hosts.",
            [
                section(
                    ":desktop_computer: No live hosts. Start a worker on each host "
                    "(`bpfsleuth worker`); it registers itself."
                )
            ],
        )
    shown = sorted(hosts, key=lambda h: h.name)[:MAX_HOSTS_SHOWN]
    blocks = [header(f"Live hosts ({len(hosts)})"), *sections_from_lines(map(_host_line, shown))]
    if len(hosts) > len(shown):
        blocks.append(context(f"_{len(hosts) - len(shown)} more not shown._"))
    names = ", ".join(h.name for h in shown)
    return finish(f"Live hosts: {names}", blocks)
