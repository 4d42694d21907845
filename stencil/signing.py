"""Signatures: Standard Webhooks (``webhook-signature: v1,<base64>``) and expiring file links.

Webhooks: HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` with the bytes of a
``whsec_<base64>`` secret, as the Standard Webhooks specification and its libraries do.

File links (local storage served by the API): HMAC-SHA256 over ``{key}\\n{expires}`` with the
API's file secret; a link is refused after ``expires`` (unix seconds) or when anything changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix)


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes (the specification allows 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def file_signature(secret: bytes, key: str, expires: int) -> str:
    digest = hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def file_signature_ok(secret: bytes, key: str, expires: int, signature: str, now: float) -> bool:
    """True when ``signature`` signs ``key`` until ``expires`` and that moment has not passed."""
    if expires < now:
        return False
    expected = file_signature(secret, key, expires).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
