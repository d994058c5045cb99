"""Wiring: settings, the Slack client and the bot's services -> the alerts ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from bot.alerts.app import alerts_route, standalone_app
from bot.alerts.service import AlertService
from bot.services import BotServices
from bot.settings import AlertSettings, BotSettings
from bot.slack_api.client import build_web_client


def service_for(services: BotServices, settings: AlertSettings | None = None) -> AlertService:
    return AlertService(services, settings or AlertSettings())


def route_for(services: BotServices, settings: AlertSettings | None = None) -> Route:
    """`POST /alerts` for the bot's HTTP app (Starlette routes), sharing the bot's services."""
    service = service_for(services, settings)
    return alerts_route(service.settings, service.handle, service.check_rate)


def build_standalone() -> Starlette:
    """`bpfsleuth alerts`: its own services from the environment; ValueError when misconfigured."""
    bot_settings = BotSettings()
    settings = AlertSettings()
    if settings.token is None:
        raise ValueError("set BPFSLEUTH_ALERT_TOKEN (Alertmanager sends it as a bearer token)")
    if bot_settings.bot_token is None:
        raise ValueError("set SLACK_BOT_TOKEN: alert threads are posted as the bot")
    services = BotServices.create(bot_settings, build_web_client(bot_settings))
    service = service_for(services, settings)
    return standalone_app(settings, service.handle, service.check_rate)
