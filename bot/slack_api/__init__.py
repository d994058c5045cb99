"""The Slack Web API client (`client`: base URL from settings, 429 Retry-After honoured) and its
metrics (`metrics`)."""
