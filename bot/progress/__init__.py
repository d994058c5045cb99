"""Rendering progress to Slack: the consumer thread (`consumer`), the pure fold behind it
(`state`), approval messages in threads (`approvals`) and a closed step's outputs (`outputs`)."""
