"""The Slack side of bpfsleuth: a Bolt app that takes /diagnose, enqueues the work for the
workers, and renders each investigation in a thread. It never runs a command or a probe.

- `app`, `settings`, `services`: the Bolt app, its configuration, what listeners share.
- `gateway`: the one door into the worker side (start, follow up, approve, look up); the bot
  reads the worker's models and keys, it never re-declares them.
- `listeners/` (one per file, registered per group) and `middleware/` (dedupe, allowlists).
- `views/`: pure functions from pydantic models to Block Kit, within Slack's limits.
- `chat/`: what people type (the `/diagnose` text, mentions) and the on-call handoff.
- `progress/`: the consumer that turns the loop's progress events into messages, the pure fold
  behind it, approval messages and a step's outputs.
- `store/`: the bot's own Redis state (where each thread is, events already handled).
- `slack_api/`: the Web API client (429s honoured) and its metrics.
- `serve/`: the two ways to run the bot (Socket Mode, HTTP under gunicorn).
- `alerts/`: the Alertmanager receiver.
"""
