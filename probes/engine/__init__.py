"""The probe engine: plan the attach points, run each probe in a child process, compile, read
and summarise its maps, and keep every result within its budget."""
