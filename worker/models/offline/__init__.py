"""The offline runbook planner: the default backend when no model key is configured.

- `categories`: the symptom's words and phrases -> weighted problem categories.
- `runbooks`: the broad triage, then per category the read-only commands and catalog probes
  (plain data, so they can come from YAML flows).
- `analyzers/`: one module per analyzer, registered by name; each turns evidence into findings
  naming the culprit, with the requests that would confirm them (`evidence` holds the readers).
- `planner`: step 1 triages, later steps dig deeper on the strongest finding, then resolve
  (`planner.OfflineBackend`).
"""
