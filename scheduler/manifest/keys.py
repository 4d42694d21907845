"""Storage keys rendered from a manifest must be safe relative keys."""

from __future__ import annotations

import re

DEFAULT_OUTPUT = "{{ batch }}/{{ key }}/{{ variant }}.png"
MAX_KEY_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_SEGMENT = re.compile(r"(?:^|/)(?:\.{1,2})?(?:/|$)")


def unsafe_key_reason(key: str) -> str | None:
    """Why a rendered storage key is unsafe, or None when it is a safe relative key."""
    if not key:
        return "is empty"
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        return f"is longer than {MAX_KEY_LENGTH} bytes"
    if key.startswith("/"):
        return "must be relative (it starts with '/')"
    if "\\" in key:
        return "must not contain a backslash"
    if _CONTROL.search(key):
        return "must not contain control characters"
    if _BAD_SEGMENT.search(key):
        segments = key.split("/")
        if ".." in segments or "." in segments:
            return "must not contain '.' or '..' segments"
        return "must not contain empty segments ('//' or a trailing '/')"
    return None
