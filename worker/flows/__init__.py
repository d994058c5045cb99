"""Flows: runbooks as data that operators extend.

- `models`: Flow and its steps (`sensor`, `command`, `analyse`) with `saveAs` outputs.
- `loader`: built-in flows (this folder's `*.yaml`) plus `BPFSLEUTH_FLOW_PATH`, checked against
  the probe catalog, the command policy and the analyzers.
- `expand`: a flow as the commands and eBPF program requests of one diagnostic step.
- `select`: which flows fit a symptom (the offline planner's step 1).
- `run`: run a flow here (sensors concurrently, commands, analyses on the saved outputs).
"""

from __future__ import annotations
