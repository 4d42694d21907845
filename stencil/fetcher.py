"""The one guarded fetcher for https:// reference images.

Every URL (and every redirect target) is checked before anything connects: https only, no
credentials in the URL, no IP literal in a non-canonical notation, and every address the host
resolves to must be global (no loopback, private, link-local or metadata, shared, reserved,
multicast or unspecified address, nor one hidden inside an IPv6 mapping, NAT64, 6to4 or Teredo
address). The connection goes to the checked address, with SNI, Host and certificate checks
against the original name. Size and time are capped; the body must be a PNG, JPEG or WebP.

The time cap is one deadline for the whole fetch, redirects included. A socket timeout alone
does not enforce it (each byte that arrives restarts it, so a server that drips headers or body
could hold a fetch for minutes), so a watchdog closes the connection at the deadline, whatever
read is waiting on it.

``settings.fetch_allow_hosts`` admits named test hosts that are not global: an entry ``host``
admits https to it, an entry ``http://host`` admits plain http as well.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from stencil.errors import FetchRefused
from stencil.images import sniff_mime
from stencil.settings import Settings

MAX_REDIRECTS = 3
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class Target:
    """A checked place to connect to."""

    scheme: str
    host: str  # the name, for SNI, Host and the certificate
    port: int
    path: str  # path and query, sent as is
    addresses: tuple[str, ...]  # checked addresses to connect to, in order
    shown: str  # the URL without credentials, query or fragment, for messages


class Response(Protocol):
    """What an opener returns."""

    status: int

    def getheader(self, name: str) -> str | None: ...

    def read(self, amt: int) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[Target, float], Response]


def shown_url(url: str) -> str:
    """The URL without user info, query or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def is_public(ip: IPAddress) -> bool:
    """True when the address is global unicast and hides no non-global IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return False
        inner = _embedded_v4(ip)
        if inner is not None:
            return is_public(inner)
        if ip.is_site_local:
            return False
    return bool(
        ip.is_global
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
    )


def ip_literal(host: str, shown: str) -> IPAddress | None:
    """The address if the host is a canonical IP literal; refuse other numeric notations."""
    bare = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if _NUMERIC_LABEL.match(labels[-1]) or all(_NUMERIC_LABEL.match(x) for x in labels if x):
        raise FetchRefused(f"refused {shown}: the host is an IP address in a non-standard form")
    return None


def default_resolver(host: str, port: int) -> list[str]:
    """Every address the host resolves to (socket.getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def _allowed(host: str, scheme: str, allow: Sequence[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if entry.startswith("http://"):
            if entry[len("http://") :].rstrip("/") == host:
                return True
        elif scheme == "https" and entry.removeprefix("https://").rstrip("/") == host:
            return True
    return False


def check_url(url: str, *, settings: Settings, resolver: Resolver) -> Target:
    """Check one URL and resolve its host; FetchRefused naming the reason otherwise."""
    shown = shown_url(url)
    try:
        parts = urlsplit(url)
        port_number = parts.port
    except ValueError as exc:
        raise FetchRefused(f"refused {shown}: the URL cannot be parsed") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in ("https", "http"):
        raise FetchRefused(f"refused {shown}: only https:// URLs are fetched")
    if not host:
        raise FetchRefused(f"refused {shown}: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(f"refused {shown}: credentials in the URL are not allowed")
    allowed = _allowed(host, scheme, settings.fetch_allow_hosts)
    if scheme == "http" and not allowed:
        raise FetchRefused(f"refused {shown}: only https:// URLs are fetched")
    port = port_number or (443 if scheme == "https" else 80)
    literal = ip_literal(host, shown)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            host.encode("idna")
            addresses = list(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise FetchRefused(f"refused {shown}: the host cannot be resolved") from exc
    if not addresses:
        raise FetchRefused(f"refused {shown}: the host has no address")
    checked: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as exc:
            raise FetchRefused(f"refused {shown}: the host resolved to a bad address") from exc
        if not allowed and not is_public(ip):
            raise FetchRefused(f"refused {shown}: the host resolves to a non-public address")
        checked.append(str(ip))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path, tuple(checked), shown)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and certificate checks for the original name."""

    def __init__(self, target: Target, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = address
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = sock  # visible to the watchdog during the TLS handshake
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a given address (allow-listed test hosts only)."""

    def __init__(self, target: Target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _Watchdog:
    """Shuts a connection's socket down when the deadline passes, unblocking any read on it."""

    def __init__(self, connection: http.client.HTTPConnection, timeout: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(0.0, timeout), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            try:  # the plain socket's shutdown: it interrupts a TLS read in another thread too
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


class _WatchedResponse:
    """A response whose reads end with TimeoutError once the watchdog has fired."""

    def __init__(self, response: http.client.HTTPResponse, watchdog: _Watchdog) -> None:
        self._response = response
        self._watchdog = watchdog
        self.status = response.status

    def getheader(self, name: str) -> str | None:
        return self._response.getheader(name)

    def read(self, amt: int) -> bytes:
        try:
            data = self._response.read1(amt)
        except (OSError, http.client.HTTPException) as exc:
            if self._watchdog.fired:
                raise TimeoutError("the fetch deadline passed") from exc
            raise
        if self._watchdog.fired:  # bytes read up to the cut, or a cut stream that looks ended
            raise TimeoutError("the fetch deadline passed")
        return data

    def close(self) -> None:
        self._watchdog.cancel()
        self._response.close()


class HttpOpener:
    """The real opener: one GET to the first checked address that accepts a connection, all
    within ``timeout`` (connect, TLS, headers and every read of the body)."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.context = context or ssl.create_default_context()

    def __call__(self, target: Target, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        error: OSError | None = None
        for address in target.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the fetch deadline passed")
            connection: http.client.HTTPConnection
            if target.scheme == "https":
                connection = _PinnedHTTPSConnection(target, address, remaining, self.context)
            else:
                connection = _PinnedHTTPConnection(target, address, remaining)
            watchdog = _Watchdog(connection, remaining)
            try:
                connection.connect()
            except OSError as exc:
                watchdog.cancel()
                connection.close()
                if watchdog.fired:
                    raise TimeoutError("the fetch deadline passed") from exc
                if isinstance(exc, ssl.SSLError):
                    raise
                error = exc
                continue
            try:
                connection.request("GET", target.path, headers={"Accept": "image/*"})
                return _WatchedResponse(connection.getresponse(), watchdog)
            except (OSError, http.client.HTTPException) as exc:
                watchdog.cancel()
                connection.close()
                if watchdog.fired:
                    raise TimeoutError("the fetch deadline passed") from exc
                raise
        assert error is not None
        raise error


def _read_capped(response: Response, target: Target, max_bytes: int, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise FetchRefused(f"refused {target.shown}: larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchRefused(f"refused {target.shown}: took too long")
        chunk = response.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused(f"refused {target.shown}: larger than {max_bytes} bytes")
        chunks.append(chunk)


def fetch_image(
    url: str,
    *,
    settings: Settings,
    resolver: Resolver | None = None,
    opener: Opener | None = None,
) -> bytes:
    """The bytes of a PNG, JPEG or WebP at an https URL; FetchRefused for anything else."""
    resolve = resolver or default_resolver
    open_ = opener or HttpOpener()
    deadline = time.monotonic() + settings.fetch_timeout_s
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = check_url(current, settings=settings, resolver=resolve)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchRefused(f"refused {target.shown}: took too long")
        try:
            response = open_(target, remaining)
        except FetchRefused:
            raise
        except (OSError, http.client.HTTPException) as exc:
            reason = "took too long" if isinstance(exc, TimeoutError) else "could not be fetched"
            raise FetchRefused(f"refused {target.shown}: {reason} ({type(exc).__name__})") from exc
        try:
            if response.status in REDIRECT_CODES:
                location = response.getheader("Location")
                if not location:
                    raise FetchRefused(f"refused {target.shown}: a redirect without a Location")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchRefused(f"refused {target.shown}: the server answered {response.status}")
            try:
                data = _read_capped(response, target, settings.fetch_max_bytes, deadline)
            except TimeoutError as exc:
                raise FetchRefused(f"refused {target.shown}: took too long") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise FetchRefused(f"refused {target.shown}: the download failed") from exc
        finally:
            response.close()
        if sniff_mime(data) is None:
            raise FetchRefused(f"refused {target.shown}: not a PNG, JPEG or WebP image")
        return data
    raise FetchRefused(f"refused {shown_url(url)}: more than {MAX_REDIRECTS} redirects")
