"""The credential redactor: no token or key from a provider's answer reaches a record or a log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from stencil.settings import Settings

MAX_MESSAGE = 1000
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{20,}"), "[redacted]"),
    (re.compile(r"ya29\.[0-9A-Za-z_\-.]+"), "[redacted]"),
    (re.compile(r"(?i)([?&](?:key|access_token|token|api_key)=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)(x-goog-api-key['\"]?\s*[:=]\s*['\"]?)[^\s\"',]+"), r"\1[redacted]"),
)

Redactor = Callable[[str], str]


def make_redactor(secrets: Iterable[str | None]) -> Redactor:
    """A function that removes these secrets, and anything shaped like a credential, from text
    (the whole text first, then cut to ``MAX_MESSAGE`` characters, so no secret is cut in two)."""
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in known:
            text = text.replace(secret, "[redacted]")
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text[:MAX_MESSAGE]

    return redact


def configured_secrets(settings: Settings) -> tuple[str | None, ...]:
    """The credentials in the settings, for :func:`make_redactor`."""
    values = (settings.vertex_access_token, settings.vertex_api_key, settings.gemini_api_key)
    return tuple(v.get_secret_value() or None if v is not None else None for v in values)
