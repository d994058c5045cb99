"""What people say to the bot: the `/diagnose` text (`diagnose_command`), mentions in a thread
(`conversation`), and the on-call handoff (`handoff`)."""
