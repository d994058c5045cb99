"""Block Kit views: pure functions from pydantic models to messages within Slack's limits."""
