"""The worker's commands (`bpfsleuth doctor|diagnose|exec|demo|worker|hosts|flows ...`).

`app` assembles them; each command imports what it needs when it runs (start-up cost).
"""
