"""The offline planner and its analyzers (`offline/`). The model backends moved to
`worker.backends`; this package is to become `worker.backends.offline` and `worker.analysis`."""
