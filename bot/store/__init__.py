"""The bot's own Redis state: where each investigation lives in Slack (`threads`) and which
events were already handled (`dedupe`)."""
