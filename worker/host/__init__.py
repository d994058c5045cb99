"""What runs on a host: the executor (policy, then sandbox), redaction, the probe bridge, the
plan executor, and the approvers a command that needs approval waits on."""
