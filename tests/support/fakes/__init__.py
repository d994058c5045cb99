"""Local fakes of the third-party HTTP APIs we talk to (Slack, Anthropic, OpenAI)."""
