"""The offline runbook planner: the default backend when no model key is configured.

- `runbooks`: the broad triage, then per category the read-only commands and catalog probes
  (plain data, so they can come from YAML flows).
- `focus`: a look at the process the symptom names when nothing found is about it yet.
- `planner`: step 1 triages, later steps dig deeper on the strongest finding, then resolve
  (`planner.OfflineBackend`). The findings come from `worker.analysis`.
"""
