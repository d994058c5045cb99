"""Turning evidence into findings, shared by the offline planner (`worker.backends.offline`) and
the flows' `analyse` steps (`worker.flows`).

- `evidence`: readers over what the loop collected (command outputs, probe results).
- `analyzers/`: one module per analyzer, registered by name; each turns evidence into findings
  naming the culprit ("process P does X at rate R with outcome E on object O"), with the
  requests that would confirm them.
- `relevance`: how much a finding is about the symptom and the process it names.
- `categories`: the symptom's words and phrases -> weighted problem categories.
- `errnos`: what each errno means to an on-call engineer.
"""
