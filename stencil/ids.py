"""Request ids: unguessable, prefixed by kind (``b_`` batch, ``i_`` item, ``a_`` attempt)."""

from __future__ import annotations

import secrets
from enum import StrEnum


class IdKind(StrEnum):
    """The kinds of request id, by prefix."""

    batch = "b"  # a submitted manifest
    item = "i"  # one image of one row
    attempt = "a"  # one paid (or refused) call for an item


def new_id(kind: IdKind) -> str:
    """A fresh id: the kind's prefix and 128 random bits in base32 (26 characters)."""
    raw = secrets.token_bytes(16)
    return f"{kind.value}_{_b32(raw)}"


def kind_of(request_id: str) -> IdKind | None:
    """The kind of a request id, or None when it has no known prefix."""
    prefix, sep, _ = request_id.partition("_")
    if not sep:
        return None
    try:
        return IdKind(prefix)
    except ValueError:
        return None


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = []
    for _ in range(26):
        number, rest = divmod(number, 32)
        out.append(_ALPHABET[rest])
    return "".join(reversed(out))
