"""Alert-triggered investigations: Prometheus Alertmanager's webhook (version 4) in, threads out.

`models` is the payload, `service` turns a notification into an investigation thread (or a note
in an existing one), `app` is the ASGI app (token, size, rate limit), `cli` serves it alone
(`bpfsleuth alerts`) for Socket-Mode deployments. In HTTP mode add `server.route_for(services)`
(`POST /alerts`) to the bot's HTTP app's routes.
"""
