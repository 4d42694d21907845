"""Secrets kept out of what Stencil shows: URLs with their passwords masked, and a redactor that
removes this configuration's secrets from any text (used by `stencil doctor`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stencil.settings import Settings

SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "signature", "credential")


def mask_url(url: str) -> str:
    """The URL with its password and secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_secret_name(k) for k, _ in pairs):
        query = urlencode([(k, "***" if _secret_name(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # unchanged (urlunsplit would also drop a slash of sqlite:////abs/path)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _secret_name(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret this configuration holds: keys, tokens, URL passwords, AWS secrets."""
    found = [
        s.get_secret_value()
        for s in (settings.vertex_access_token, settings.vertex_api_key, settings.gemini_api_key)
        if s is not None
    ]
    for url in (settings.database_url, settings.broker_url, settings.s3_endpoint_url):
        if url:
            parts = urlsplit(url)
            found.append(parts.password or "")
            found += [v for k, v in parse_qsl(parts.query) if _secret_name(k)]
    found += [os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)  # not "test"


def redactor(settings: Settings) -> Callable[[str], str]:
    secrets = configured_secrets(settings)

    def redact(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return redact
