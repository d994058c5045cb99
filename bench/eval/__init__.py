"""The eval: real faults on this host, investigated by the real loop, scored against ground truth.

Run as root from the repository root: `python -m bench.eval` (or `make eval`). Every run draws
new process names, paths, ports, rates and symptom phrasings from a seed it prints, starts each
fault (and, with `--noise on`, background noise), runs the loop in process against the chosen
backend (`--model offline|anthropic|openai`), stops everything and scores the resolution:

- `draw`: seeded names, ports, paths, values and phrasings.
- `harness`: processes, binaries, mounts, the fault and spec types, cleanup.
- `faults_*`: the faults, by area; `catalog`: all of them, in order.
- `noise`: the background noise every real host has.
- `scoring`: culprit named, evidence recall, calibration.
- `runner`: the command line, the table and bench/results/eval.json.
"""
