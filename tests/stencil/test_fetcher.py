"""The guarded fetcher: refusals proven without connecting anywhere, and one real https fetch."""

from __future__ import annotations

import datetime
import io
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from stencil.errors import FetchRefused
from stencil.fetcher import HttpOpener, Target, fetch_image
from stencil.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def settings(**values: object) -> Settings:
    return Settings(**{"fetch_timeout_s": 5.0, **values})


def no_connect(target: Target, timeout: float) -> object:
    pytest.fail(f"the fetcher tried to connect to {target.addresses}")


def resolver_of(*addresses: str) -> object:
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


def no_resolve(host: str, port: int) -> Sequence[str]:
    pytest.fail(f"the fetcher tried to resolve {host}")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1",
        "2002:7f00:0001::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "::127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused_without_connecting(address: str) -> None:
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch_image(
            "https://images.example.com/a.png?sig=SECRET",
            settings=settings(),
            resolver=resolver_of(address),
            opener=no_connect,
        )


def test_one_bad_address_among_good_ones_is_refused() -> None:
    with pytest.raises(FetchRefused, match="non-public address") as info:
        fetch_image(
            "https://images.example.com/a.png?token=SECRET",
            settings=settings(),
            resolver=resolver_of("93.184.216.34", "10.0.0.7"),
            opener=no_connect,
        )
    assert "SECRET" not in str(info.value)
    assert "https://images.example.com/a.png" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/a.png",
        "https://0177.0.0.1/a.png",
        "https://0x7f.1/a.png",
        "https://0x7f000001/a.png",
        "https://127.1/a.png",
        "https://127.000.000.001/a.png",
        "https://1.2.3/a.png",
    ],
)
def test_ip_literals_in_other_notations_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused, match="non-standard form"):
        fetch_image(url, settings=settings(), resolver=no_resolve, opener=no_connect)


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/a.png", "https://[::1]/a.png", "https://169.254.169.254/latest"]
)
def test_canonical_ip_literals_are_checked_without_dns(url: str) -> None:
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch_image(url, settings=settings(), resolver=no_resolve, opener=no_connect)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://images.example.com/a.png", "only https"),
        ("ftp://images.example.com/a.png", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://user:pw@images.example.com/a.png", "credentials"),
        ("https:///a.png", "no host"),
    ],
)
def test_bad_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(FetchRefused, match=reason):
        fetch_image(url, settings=settings(), resolver=no_resolve, opener=no_connect)


def test_allow_list_admits_https_but_not_plain_http_unless_said() -> None:
    calls: list[Target] = []

    def record(target: Target, timeout: float) -> object:
        calls.append(target)
        return FakeResponse(200, body=PNG)

    allow = settings(fetch_allow_hosts=["img.test"])
    assert (
        fetch_image(
            "https://img.test/a.png",
            settings=allow,
            resolver=resolver_of("127.0.0.1"),
            opener=record,
        )
        == PNG
    )
    with pytest.raises(FetchRefused, match="only https"):
        fetch_image("http://img.test/a.png", settings=allow, resolver=no_resolve, opener=no_connect)
    plain = settings(fetch_allow_hosts=["http://img.test"])
    assert (
        fetch_image(
            "http://img.test/a.png",
            settings=plain,
            resolver=resolver_of("127.0.0.1"),
            opener=record,
        )
        == PNG
    )
    assert [(t.scheme, t.host, t.addresses) for t in calls] == [
        ("https", "img.test", ("127.0.0.1",)),
        ("http", "img.test", ("127.0.0.1",)),
    ]


@dataclass
class FakeResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    _stream: io.BytesIO | None = None

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self, amt: int) -> bytes:
        if self._stream is None:
            self._stream = io.BytesIO(self.body)
        return self._stream.read(amt)

    def close(self) -> None:
        pass


class ScriptedOpener:
    """Answers by host, recording every target it was asked to open."""

    def __init__(self, answers: dict[str, FakeResponse]) -> None:
        self.answers = answers
        self.opened: list[str] = []

    def __call__(self, target: Target, timeout: float) -> FakeResponse:
        self.opened.append(target.host)
        return self.answers[target.host]


def public(host: str, port: int) -> Sequence[str]:
    return {"a.example.com": ["93.184.216.34"], "evil.example.com": ["10.0.0.1"]}.get(
        host, ["93.184.216.35"]
    )


def test_redirect_targets_are_checked_again_before_connecting() -> None:
    opener = ScriptedOpener(
        {"a.example.com": FakeResponse(302, {"Location": "https://evil.example.com/x.png"})}
    )
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch_image(
            "https://a.example.com/a.png", settings=settings(), resolver=public, opener=opener
        )
    assert opener.opened == ["a.example.com"]


def test_redirects_are_followed_up_to_three_times() -> None:
    hops = {
        f"h{i}.example.com": FakeResponse(301, {"Location": f"https://h{i + 1}.example.com/"})
        for i in range(4)
    }
    opener = ScriptedOpener({**hops, "h3.example.com": FakeResponse(200, body=PNG)})
    assert (
        fetch_image("https://h0.example.com/", settings=settings(), resolver=public, opener=opener)
        == PNG
    )

    opener = ScriptedOpener({**hops, "h4.example.com": FakeResponse(200, body=PNG)})
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        fetch_image("https://h0.example.com/", settings=settings(), resolver=public, opener=opener)
    assert opener.opened == ["h0.example.com", "h1.example.com", "h2.example.com", "h3.example.com"]


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (FakeResponse(200, {"Content-Length": "999999"}, PNG), "larger than"),
        (FakeResponse(200, {}, PNG + b"\x00" * 2000), "larger than"),
        (FakeResponse(200, {}, b"<html>not an image</html>"), "not a PNG"),
        (FakeResponse(404, {}, b""), "answered 404"),
    ],
)
def test_size_type_and_status_are_checked(response: FakeResponse, reason: str) -> None:
    opener = ScriptedOpener({"a.example.com": response})
    with pytest.raises(FetchRefused, match=reason):
        fetch_image(
            "https://a.example.com/a.png",
            settings=settings(fetch_max_bytes=1000),
            resolver=public,
            opener=opener,
        )


# ---- a real https fetch against a local server with a certificate made here ---------------


@dataclass
class LocalHttps:
    port: int
    context: ssl.SSLContext
    hosts: list[str]


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "img.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("img.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def local_https(tmp_path: Path) -> Iterator[LocalHttps]:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format="PNG")
    image = buffer.getvalue()
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args: object) -> None:
            pass

    cert_path, key_path = _certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert_path))
    try:
        yield LocalHttps(server.server_address[1], client_context, hosts)
    finally:
        server.shutdown()
        server.server_close()


def test_fetches_over_https_from_an_allowed_local_host(local_https: LocalHttps) -> None:
    url = f"https://img.test:{local_https.port}/ref.png?sig=abc"
    data = fetch_image(
        url,
        settings=settings(fetch_allow_hosts=["img.test"]),
        resolver=resolver_of("127.0.0.1"),
        opener=HttpOpener(local_https.context),
    )

    assert data.startswith(b"\x89PNG")
    assert local_https.hosts == [f"img.test:{local_https.port}"]


def test_a_certificate_for_another_name_is_refused(local_https: LocalHttps) -> None:
    with pytest.raises(FetchRefused, match="could not be fetched"):
        fetch_image(
            f"https://other.test:{local_https.port}/ref.png",
            settings=settings(fetch_allow_hosts=["other.test"]),
            resolver=resolver_of("127.0.0.1"),
            opener=HttpOpener(local_https.context),
        )
    assert local_https.hosts == []


def test_loopback_is_refused_without_the_allow_list(local_https: LocalHttps) -> None:
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch_image(
            f"https://img.test:{local_https.port}/ref.png",
            settings=settings(),
            resolver=resolver_of("127.0.0.1"),
            opener=HttpOpener(local_https.context),
        )
    assert local_https.hosts == []
