"""The Slack side of bpfsleuth: a Bolt app that takes /diagnose, enqueues the work for the
workers, and renders each investigation in a thread. It never runs a command or a probe.

- `app`, `runner`, `server`: the Bolt app and the two ways to run it (Socket Mode, HTTP).
- `listeners/` (one per file, registered per group) and `middleware/` (dedupe, allowlists).
- `views/`: pure functions from pydantic models to Block Kit, within Slack's limits.
- `progress`, `progress_state`: the consumer that turns the loop's progress events into
  messages, and the pure fold behind it.
- `gateway`: the one door into the worker side (start, follow up, approve, look up).
"""
