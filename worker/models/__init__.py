"""Model backends behind one interface (`base.ModelBackend`): anthropic, openai, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.models.base import ModelBackend
    from worker.settings import WorkerSettings


def build_backend(settings: WorkerSettings, name: str | None = None) -> ModelBackend:
    """The backend called `name` (None or 'auto': the settings' choice), configured."""
    resolved = settings.resolved_backend() if name in (None, "auto") else name
    if resolved == "anthropic":
        from worker.models.anthropic import AnthropicBackend

        return AnthropicBackend.from_settings(settings)
    if resolved == "openai":
        from worker.models.openai import OpenAIBackend

        return OpenAIBackend.from_settings(settings)
    if resolved == "offline":
        from worker.models.offline import OfflineBackend

        return OfflineBackend()
    raise ValueError(f"unknown model backend {name!r}: use offline, anthropic or openai")
