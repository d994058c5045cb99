"""Every Redis key bpfsleuth uses, built here and nowhere else (a leaf: imports nothing of ours).

Worker state (`worker.distributed.store`, every per-investigation key expires after
`BPFSLEUTH_STATE_TTL_S`):

- `bpfsleuth:inv:<id>`: the Investigation (JSON) and its version (hash);
- `bpfsleuth:inv:<id>:asked_by`: who started it (the audit's "asked by");
- `bpfsleuth:inv:<id>:step:<n>`: one step's join (meta, one result per host, closed, claims);
- `bpfsleuth:inv:<id>:progress`: the ProgressEvent stream the bot and CLI read;
- `bpfsleuth:deadlines`: step deadlines (zset of `<id>:<n>`); `bpfsleuth:watchdog`: stall checks;
- `bpfsleuth:audit`: the audit stream (who asked, who approved, what ran);
- `bpfsleuth:host:<name>`, `bpfsleuth:hosts`: live hosts (`worker.distributed.registry`);
- `bpfsleuth:approval:<id>:<command id>`: a responder's decision on one command, written once
  by the bot, read by the host's approver (`worker.host.approver_redis`).

Slack side (the bot, under `bpfsleuth:slack:`): the thread of each investigation, the active
set and the wake stream the progress consumer follows, its lease and per-thread render state,
event dedupe, per-channel start locks. Alerts (under `bpfsleuth:alerts:`): groups, rate windows,
locks.
"""

from __future__ import annotations

PREFIX = "bpfsleuth"

# --- investigations (worker.distributed.store) ------------------------------------------------
INVESTIGATION_PREFIX = f"{PREFIX}:inv:"  # the Lua deadline claim builds step keys from it
DEADLINES = f"{PREFIX}:deadlines"
WATCHDOG = f"{PREFIX}:watchdog"
AUDIT_STREAM = f"{PREFIX}:audit"


def investigation(investigation_id: str) -> str:
    return f"{INVESTIGATION_PREFIX}{investigation_id}"


def step(investigation_id: str, step: int) -> str:
    return f"{investigation(investigation_id)}:step:{step}"


def progress(investigation_id: str) -> str:
    return f"{investigation(investigation_id)}:progress"


def origin(investigation_id: str) -> str:
    """Who started the investigation (kept beside it, same TTL)."""
    return f"{investigation(investigation_id)}:asked_by"


def deadline_member(investigation_id: str, step: int) -> str:
    """A step's member in the DEADLINES zset."""
    return f"{investigation_id}:{step}"


# --- hosts (worker.distributed.registry) ---------------------------------------------------------
HOSTS = f"{PREFIX}:hosts"


def host(name: str) -> str:
    return f"{PREFIX}:host:{name}"


# --- approvals (written by the bot, read by worker.host.approver_redis) --------------------------
def approval(investigation_id: str, command_id: str) -> str:
    return f"{PREFIX}:approval:{investigation_id}:{command_id}"


# --- the Slack side (bot/) ---------------------------------------------------------------------
SLACK_PREFIX = f"{PREFIX}:slack"
SLACK_ACTIVE = f"{SLACK_PREFIX}:active"
SLACK_WAKE_STREAM = f"{SLACK_PREFIX}:wake"
SLACK_CONSUMER_LEASE = f"{SLACK_PREFIX}:consumer"


def slack_investigation(investigation_id: str) -> str:
    return f"{SLACK_PREFIX}:inv:{investigation_id}"


def slack_thread(channel_id: str, ts: str) -> str:
    return f"{SLACK_PREFIX}:thread:{channel_id}:{ts}"


def slack_channel(channel_id: str) -> str:
    return f"{SLACK_PREFIX}:channel:{channel_id}"


def slack_start_lock(channel_id: str) -> str:
    return f"{SLACK_PREFIX}:start-lock:{channel_id}"


def slack_render(investigation_id: str) -> str:
    """The progress consumer's render state of one thread."""
    return f"{SLACK_PREFIX}:render:{investigation_id}"


def slack_seen(key: str) -> str:
    """Event dedupe."""
    return f"{SLACK_PREFIX}:seen:{key}"


def slack_approval(investigation_id: str, command_id: str) -> str:
    """The bot's record of an approval request it posted (its message, its state)."""
    return f"{SLACK_PREFIX}:approval:{investigation_id}:{command_id}"


# --- alerts (bot/alerts) -----------------------------------------------------------------------
ALERTS_PREFIX = f"{PREFIX}:alerts"


def alert_group(group_id: str) -> str:
    return f"{ALERTS_PREFIX}:group:{group_id}"


def alert_rate(group_id: str, window: int) -> str:
    return f"{ALERTS_PREFIX}:rate:{group_id}:{window}"


def alert_lock(group_id: str) -> str:
    return f"{ALERTS_PREFIX}:lock:{group_id}"
