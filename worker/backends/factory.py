"""The backend the settings (or a `--model` option) name, configured."""

from __future__ import annotations

from worker.backends.anthropic import AnthropicBackend
from worker.backends.base import ModelBackend
from worker.backends.offline.planner import OfflineBackend
from worker.backends.openai import OpenAIBackend
from worker.settings import WorkerSettings


def build_backend(settings: WorkerSettings, name: str | None = None) -> ModelBackend:
    """The backend called `name` (None or 'auto': the settings' choice), configured."""
    resolved = settings.resolved_backend() if name in (None, "auto") else name
    if resolved == "anthropic":
        return AnthropicBackend.from_settings(settings)
    if resolved == "openai":
        return OpenAIBackend.from_settings(settings)
    if resolved == "offline":
        return OfflineBackend()
    raise ValueError(f"unknown model backend {name!r}: use offline, anthropic or openai")
