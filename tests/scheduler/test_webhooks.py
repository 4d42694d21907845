"""The webhook sender's rules, without a network: signatures a Standard Webhooks library
verifies, the retry schedule, and which URLs are accepted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from scheduler.webhooks import Answer, check_webhook_url, next_wait
from stencil.errors import FetchRefused
from stencil.settings import Settings
from stencil.signing import file_signature, file_signature_ok, new_webhook_secret, sign_webhook

SCHEDULE = [0.0, 5, 300, 1800]


def _resolver(host: str, port: int) -> list[str]:
    return {"hooks.example": ["93.184.216.34"], "inside.example": ["10.0.0.7"]}[host]


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    secret = new_webhook_secret()
    body = '{"type":"request.completed","timestamp":"2026-12-01T00:00:00+00:00","data":{}}'
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign_webhook(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers)["type"] == "request.completed"
    assert headers["webhook-signature"] == Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(now, UTC), body
    )


def test_retry_schedule_then_give_up() -> None:
    failed = Answer(500)
    assert [next_wait(n, failed, SCHEDULE) for n in range(1, 5)] == [5, 300, 1800, None]
    assert next_wait(1, Answer(429, retry_after_s=60), SCHEDULE) == 60  # Retry-After is honoured


def test_webhook_urls_need_https_to_public_addresses() -> None:
    settings = Settings(webhook_allow_loopback=False, fetch_allow_hosts=[])
    assert check_webhook_url("https://hooks.example/x", settings=settings, resolver=_resolver)
    for url in ("http://hooks.example/x", "https://inside.example/x", "https://127.0.0.1/x"):
        with pytest.raises(FetchRefused):
            check_webhook_url(url, settings=settings, resolver=_resolver)


def test_loopback_is_allowed_only_when_asked() -> None:
    allowed = Settings(webhook_allow_loopback=True, fetch_allow_hosts=[])
    assert check_webhook_url("http://127.0.0.1:9/x", settings=allowed, resolver=_resolver)
    with pytest.raises(FetchRefused):
        check_webhook_url("https://inside.example/x", settings=allowed, resolver=_resolver)
    with pytest.raises(FetchRefused):
        check_webhook_url(
            "http://127.0.0.1:9/x",
            settings=Settings(webhook_allow_loopback=False, fetch_allow_hosts=[]),
            resolver=_resolver,
        )


def test_file_links_expire_and_name_one_key() -> None:
    secret = b"k" * 32
    sig = file_signature(secret, "a/b.png", 1000)
    assert file_signature_ok(secret, "a/b.png", 1000, sig, now=999)
    assert not file_signature_ok(secret, "a/b.png", 1000, sig, now=1001)
    assert not file_signature_ok(secret, "a/c.png", 1000, sig, now=999)
    assert not file_signature_ok(secret, "a/b.png", 1000, "\u00e9" + sig, now=999)
