"""The webhook sender: a thread of the scheduler process that sends due deliveries.

Deliveries are rows written with the change that caused them (``models/queries/webhooks.py``),
so a scheduler that stops between the change and the send sends it after it restarts. Each send
follows Standard Webhooks: ``webhook-id`` (the same on every attempt), ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>`` with the tenant's ``whsec_`` secret; a 2xx is
delivered, a 410 disables the endpoint, anything else (a redirect too: none is followed, a
timeout, a refused address) is tried again on ``settings.webhook_retry_s`` until it runs out.

The URL is checked by the guarded fetcher's rules before every attempt (https to public
addresses only; ``STENCIL_WEBHOOK_ALLOW_LOOPBACK=true`` also admits http(s) to loopback), and the
connection goes to the checked address, so a name that resolves elsewhere later cannot redirect
the request inside the network.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from models.base import utcnow
from models.db import session_scope
from models.queries import idempotency as idempotency_queries
from models.queries import webhooks as webhook_queries
from stencil.errors import FetchRefused
from stencil.fetcher import (
    Resolver,
    Target,
    _PinnedHTTPConnection,
    _PinnedHTTPSConnection,
    _Watchdog,
    check_url,
    default_resolver,
)
from stencil.settings import Settings
from stencil.signing import sign_webhook

log = logging.getLogger(__name__)
EVERY_S = 0.5  # how often due deliveries are looked for
BATCH = 20  # deliveries claimed at a time
SENDERS = 4  # sends at once
LEASE_MARGIN_S = 30.0  # a claimed delivery is not claimed again before timeout + this
MAX_RETRY_AFTER_S = 86400.0
IDEMPOTENCY_KEEP = timedelta(hours=24)
PRUNE_EVERY_S = 60.0
USER_AGENT = "Stencil-Webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status code, or the reason there was none."""

    status: int | None
    error: str | None = None
    retry_after_s: float | None = None


def check_webhook_url(
    url: str, *, settings: Settings, resolver: Resolver = default_resolver
) -> Target:
    """The checked target of a webhook URL; FetchRefused (an InputError) saying why not."""
    return check_url(url, settings=_url_settings(url, settings), resolver=resolver)


def _url_settings(url: str, settings: Settings) -> Settings:
    """The fetcher's rules, plus loopback hosts when STENCIL_WEBHOOK_ALLOW_LOOPBACK is set."""
    if not settings.webhook_allow_loopback:
        return settings
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return settings
    if host == "localhost" or _is_loopback(host):
        allow = [*settings.fetch_allow_hosts, f"http://{host}"]
        return settings.model_copy(update={"fetch_allow_hosts": allow})
    return settings


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send(url: str, *, msg_id: str, secret: str, payload: str, settings: Settings) -> Answer:
    """One attempt: POST the signed payload to the checked address within the timeout."""
    try:
        target = check_webhook_url(url, settings=settings)
    except FetchRefused as exc:
        return Answer(None, str(exc))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, msg_id, timestamp, payload),
    }
    timeout = settings.webhook_timeout_s
    connection: http.client.HTTPConnection
    address = target.addresses[0]
    if target.scheme == "https":
        context = ssl.create_default_context()
        connection = _PinnedHTTPSConnection(target, address, timeout, context)
    else:
        connection = _PinnedHTTPConnection(target, address, timeout)
    watchdog = _Watchdog(connection, timeout)
    try:
        connection.request("POST", target.path, body=payload.encode(), headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # the body is not used; read a little so the answer completes
        return Answer(response.status, None, _retry_after(response.getheader("retry-after")))
    except (OSError, http.client.HTTPException) as exc:
        reason = "timed out" if watchdog.fired else f"{type(exc).__name__}: {exc}"
        return Answer(None, reason[:300])
    finally:
        watchdog.cancel()
        connection.close()


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER_S)


def next_wait(attempts: int, answer: Answer, schedule: list[float]) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones; None: stop trying."""
    if attempts >= len(schedule):
        return None
    wait = schedule[attempts]
    if answer.retry_after_s is not None:
        wait = max(wait, answer.retry_after_s)
    return wait


def deliver_due(*, settings: Settings, limit: int = BATCH) -> int:
    """Send the deliveries due now (a few at once); returns how many were attempted."""
    lease = timedelta(seconds=settings.webhook_timeout_s + LEASE_MARGIN_S)
    with session_scope() as session:
        due = webhook_queries.claim_due(session=session, now=utcnow(), lease=lease, limit=limit)
    if not due:
        return 0
    with ThreadPoolExecutor(max_workers=min(SENDERS, len(due))) as pool:
        list(pool.map(lambda d: _attempt(d, settings), due))
    return len(due)


def _attempt(due: webhook_queries.Due, settings: Settings) -> None:
    started = utcnow()
    clock = time.monotonic()
    answer = send(
        due.url, msg_id=due.delivery_id, secret=due.secret, payload=due.payload, settings=settings
    )
    duration_ms = int((time.monotonic() - clock) * 1000)
    wait = next_wait(due.number, answer, settings.webhook_retry_s)
    with session_scope() as session:
        state = webhook_queries.record_attempt(
            session=session,
            due=due,
            started_at=started,
            duration_ms=duration_ms,
            status_code=answer.status,
            error=answer.error,
            next_at=None if wait is None else utcnow() + timedelta(seconds=wait),
        )
    if state != webhook_queries.DELIVERED:
        log.info(
            "webhook %s attempt %d: %s -> %s",
            due.delivery_id,
            due.number,
            answer.status or answer.error,
            state,
        )


class WebhookSender:
    """Sends due deliveries every ``EVERY_S`` on a daemon thread until ``stop`` is set; also
    forgets idempotency keys older than 24 hours. A failed round is logged and tried again."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._pruned = 0.0

    def start(self) -> WebhookSender:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(EVERY_S):
            try:
                while deliver_due(settings=self.settings) == BATCH and not self.stop.is_set():
                    pass
                self._prune()
            except Exception as exc:
                log.warning("webhook round failed (tried again): %s", exc)

    def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = time.monotonic()
        with session_scope() as session:
            idempotency_queries.prune(session=session, before=utcnow() - IDEMPOTENCY_KEEP)


def start_webhook_sender(settings: Settings, stop: threading.Event) -> WebhookSender:
    return WebhookSender(settings, stop).start()
