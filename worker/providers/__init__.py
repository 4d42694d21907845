"""Image providers: ``preview`` (offline placeholder), ``vertex`` and ``gemini`` (google-genai)."""

from __future__ import annotations

from stencil.errors import ConfigError
from stencil.settings import Settings
from worker.providers.base import ImageRequest, ImageResult, Provider, RefImage
from worker.providers.finalise import Checked
from worker.providers.redact import configured_secrets, make_redactor

PROVIDERS = ("preview", "vertex", "gemini")


def get_provider(name: str, settings: Settings) -> Provider:
    """Build the provider named in a batch, its results checked by ``finalise`` (clients are
    created here, not at import time)."""
    return Checked(_build(name, settings), redact=make_redactor(configured_secrets(settings)))


def _build(name: str, settings: Settings) -> Provider:
    if name == "preview":
        from worker.providers.preview import PreviewProvider

        return PreviewProvider()
    if name in ("vertex", "gemini"):
        from worker.providers.genai import GenaiProvider

        return GenaiProvider.from_settings(name, settings)
    raise ConfigError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}")


__all__ = ["PROVIDERS", "ImageRequest", "ImageResult", "Provider", "RefImage", "get_provider"]
