"""A server on 127.0.0.1 that drips its answer one byte at a time (plain HTTP or TLS)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHASES = ("status", "headers", "body")


class DripServer:
    """Answers every GET slowly: in phase ``status`` even the status line drips, in ``headers``
    an endless header does, in ``body`` the bytes after a PNG signature do. One byte every
    ``interval`` seconds: far slower than any deadline, each byte well within a socket timeout."""

    def __init__(
        self, phase: str, *, interval: float = 0.05, tls: ssl.SSLContext | None = None
    ) -> None:
        assert phase in PHASES
        self.phase = phase
        self.interval = interval
        self.tls = tls
        self.connections = 0
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        with contextlib.suppress(OSError), contextlib.closing(raw):
            conn.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(raw, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            head = b""
            if self.phase == "headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
            elif self.phase == "body":
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n"
                    + PNG_SIGNATURE
                )
            else:
                head = b"HTTP/1.1 200 OK\r\n"
            for byte in head + b"a" * 1_000_000:
                if self.stopping.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stopping.set()
        self._listener.close()
        self._thread.join(timeout=5)


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (its PEM path, for clients to trust) and a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "drip-cert.pem", folder / "drip-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context
