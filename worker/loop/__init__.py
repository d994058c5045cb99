"""The diagnostic loop: plain functions over an `Investigation`.

- `steps.decide_next(inv, backend)`: prompt -> model -> validated reply -> a pending plan or the
  resolution; `steps.record_results(inv, step, results)`: close one step with every host's
  results.
- `worker.host.execute.execute_plan(plan, host, context)`: run one plan on one host, bounded and
  redacted (what runs on a host lives in `worker.host`).
- `run.run_investigation(symptom, hosts, backend, ...)`: the three in a loop, with progress
  events.
- `investigation`: the state (Investigation, StepPlan, Budgets); `events`: progress events;
  `prompts` and `system_prompt`: what the model reads; `bounds`, `repeat_guard`, `synthesis`,
  `followup`, `handoff`, `flow_expansion`: the rest of a turn.

This package imports none of its modules: import the one you need.
"""
