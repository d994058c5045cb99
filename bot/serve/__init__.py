"""Running the bot: `runner` (Socket Mode or HTTP, with the progress consumer) and `server`
(HTTP mode under gunicorn)."""
