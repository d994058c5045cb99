"""The offline runbook planner: the default backend when no model key is configured.

- `categories`: symptom words -> problem categories.
- `runbooks`: per category, real read-only commands and the catalog probes that fit.
- `analyzers/`: one module per analyzer, registered by name; each turns evidence into findings.
- `planner`: step 1 triages, step 2 concludes from the strongest finding.
"""

from __future__ import annotations

from worker.models.offline.planner import OfflineBackend

__all__ = ["OfflineBackend"]
