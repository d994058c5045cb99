"""Slack bot tests: views, parsing, middleware and the bot in HTTP mode against a fake Slack."""
