"""The diagnostic loop: plain functions over an `Investigation`.

- `decide_next(inv, backend)`: prompt -> model -> validated reply -> a pending plan or the
  resolution (`steps`).
- `execute_plan(plan, host, context)`: run one plan on one host, bounded and redacted (`execute`).
- `record_results(inv, step, results)`: close one step with every host's results (`steps`).
- `run_investigation(symptom, hosts, backend, ...)`: the three in a loop, with progress events
  (`run`).

Names are imported lazily, so importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.loop.execute import ExecutionContext, execute_plan
    from worker.loop.investigation import Budgets, Investigation, StepPlan
    from worker.loop.run import run_investigation
    from worker.loop.steps import decide_next, record_results

_EXPORTS = {
    "decide_next": "worker.loop.steps",
    "record_results": "worker.loop.steps",
    "execute_plan": "worker.loop.execute",
    "ExecutionContext": "worker.loop.execute",
    "run_investigation": "worker.loop.run",
    "Investigation": "worker.loop.investigation",
    "Budgets": "worker.loop.investigation",
    "StepPlan": "worker.loop.investigation",
}
__all__ = [
    "Budgets",
    "ExecutionContext",
    "Investigation",
    "StepPlan",
    "decide_next",
    "execute_plan",
    "record_results",
    "run_investigation",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'worker.loop' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
