"""Storage keys rendered from a manifest must be safe relative keys."""

from __future__ import annotations

DEFAULT_OUTPUT = "{{ batch }}/{{ key }}/{{ variant }}.png"
MAX_KEY_LENGTH = 1024


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
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return "must not contain control characters"
    segments = key.split("/")
    if any(seg in ("..", ".") for seg in segments):
        return "must not contain '.' or '..' segments"
    if any(not seg for seg in segments):
        return "must not contain empty segments ('//' or a trailing '/')"
    return None
