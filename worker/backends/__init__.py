"""Model backends behind one interface (`base.ModelBackend`): anthropic, openai, scripted; the
offline planner lives in `worker.backends.offline` for now. `factory.build_backend` picks one."""
