"""A threaded HTTP server that answers like Vertex AI's (and the Gemini API's) generateContent.

Paths served (``{ver}`` is v1, v1beta1 or v1beta):

- ``POST /{ver}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`` (Vertex)
- ``POST /{ver}/publishers/google/models/{m}:generateContent`` (Vertex express mode)
- ``POST /{ver}/models/{m}:generateContent`` (Gemini Developer API)
- ``GET /_emulator/stats``, ``GET|POST /_emulator/config``, ``POST /_emulator/reset``

The order a call is judged in: auth (401/403), model (404), body (400), capacity and rpm (429
at once), latency, injected faults (drop, hang, 500, 503), prompt markers, then the image. The
knob ``hostile`` then changes what an answer says (stencil/emulator/hostile.py), not its bill.
"""

from __future__ import annotations

import hmac
import json
import math
import random
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from stencil.catalog import MODELS, cost_micros
from stencil.emulator.answers import (
    Answer,
    BadRequest,
    Call,
    PngCache,
    check_call,
    error_body,
    image_answer,
    json_bytes,
    marker_answer,
    not_found_message,
    parse_call,
)
from stencil.emulator.hostile import answer_body, error_fields, modes_for
from stencil.emulator.knobs import KnobBox, Knobs
from stencil.emulator.stats import Stats

GENERATE_PATH = re.compile(
    r"^/(?P<ver>v1|v1beta1|v1beta)/"
    r"(?:(?P<scope>projects/[^/]+/locations/[^/]+/publishers/google/models)"
    r"|(?P<express>publishers/google/models)|(?P<gemini>models))"
    r"/(?P<model>[^/:]+):generateContent$"
)
MODEL_PATH = re.compile(  # GET a model's description (free): what `stencil doctor` asks
    r"^/(?P<ver>v1|v1beta1|v1beta)/"
    r"(?:(?P<scope>projects/[^/]+/locations/[^/]+/publishers/google/models)"
    r"|(?P<express>publishers/google/models)|(?P<gemini>models))"
    r"/(?P<model>[^/:]+)$"
)
API_KEY_INVALID = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]


class EmulatorServer(ThreadingHTTPServer):
    """The server with its knobs, counters and image cache."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], knobs: Knobs) -> None:
        super().__init__(address, _Handler)
        self.initial_knobs = knobs
        self.knobs = KnobBox(knobs)
        self.stats = Stats()
        self.pngs = PngCache()
        self.stopping = threading.Event()
        self._rng = random.Random(knobs.seed)  # noqa: S311 - fault injection, not security
        self._rng_lock = threading.Lock()

    def configure(self, changes: dict[str, Any]) -> Knobs:
        knobs = self.knobs.update(changes)
        if "seed" in changes:
            with self._rng_lock:
                self._rng.seed(knobs.seed)
        return knobs

    def reset(self, *, knobs: bool = False) -> None:
        """Zero the counters; with ``knobs``, also restore the knobs it started with."""
        if knobs:
            self.knobs = KnobBox(self.initial_knobs)
            with self._rng_lock:
                self._rng.seed(self.initial_knobs.seed)
        self.stats.reset()

    def draw(self) -> tuple[float, float]:
        """A uniform draw for faults and a standard normal one for latency."""
        with self._rng_lock:
            return self._rng.random(), self._rng.gauss(0.0, 1.0)


def _latency(knobs: Knobs, normal: float) -> float:
    """A mean-preserving lognormal service time around ``latency_mean_s``."""
    mean, sigma = knobs.latency_mean_s, knobs.latency_jitter
    if mean <= 0:
        return 0.0
    if sigma <= 0:
        return mean
    return float(mean * math.exp(sigma * normal - sigma * sigma / 2))


def _fault(knobs: Knobs, u: float) -> str | None:
    for name, rate in (
        ("dropped", knobs.drop_rate),
        ("timeout", knobs.timeout_rate),
        ("error_500", knobs.error_500_rate),
        ("error_503", knobs.error_503_rate),
    ):
        if u < rate:
            return name
        u -= rate
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    timeout = 120  # idle keep-alive connections are closed after this
    _hostile: frozenset[str] = frozenset()  # the hostile modes for the request being served

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every answer back about 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulator's counters are its log."""

    # ---- plumbing -------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, code: int, body: bytes) -> None:
        self._release_slot()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a killed worker): not our error

    def _drop(self) -> None:
        self._release_slot()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fail(self, outcome: str, code: int, message: str | None = None, **extra: Any) -> None:
        # counted before the answer leaves, so a client that has its answer sees it counted
        knobs = self.server.knobs.get()
        self.server.stats.answered(outcome, code, knobs.sample_interval_s)
        body = error_body(code, message, extra.get("details"))
        if self._hostile:
            payload = json.loads(body)
            credential = self._credential()[0]
            payload["error"] = error_fields(
                payload["error"], self._hostile, credential, knobs.long_field_chars
            )
            body = json_bytes(payload)
        self._send(code, body)

    # ---- admin ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_emulator/stats":
            self._send(200, json_bytes(self.server.stats.snapshot()))
        elif path == "/_emulator/config":
            self._send(200, json_bytes(self.server.knobs.get().as_dict()))
        elif path == "/_emulator/health":
            self._send(200, b'{"ok":true}')
        elif (match := MODEL_PATH.match(path)) is not None:
            self._get_model(path, match)
        else:
            self._send(404, error_body(404))

    def _get_model(self, path: str, match: re.Match[str]) -> None:
        """A model's description, judged like a call (auth, then model); never billed."""
        self._hostile = frozenset()
        knobs = self.server.knobs.get()
        if self._auth_refusal(knobs):
            return
        model, resource = match["model"], path.split("/", 2)[2]
        if model not in MODELS or model in knobs.retired_models:
            kind = "gemini" if match["gemini"] else "vertex"
            self._fail("not_found", 404, not_found_message(kind, resource, match["ver"]))
            return
        name = f"models/{model}" if match["gemini"] else f"publishers/google/models/{model}"
        self._send(200, json_bytes({"name": name, "displayName": model, "versionId": "default"}))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self._hostile = frozenset()
        body = self._read_body()
        if path == "/_emulator/config":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the config body must be a JSON object")
                knobs = self.server.configure(changes)
            except ValueError as exc:
                self._send(400, error_body(400, str(exc)))
                return
            self._send(200, json_bytes(knobs.as_dict()))
        elif path == "/_emulator/reset":
            try:
                options = json.loads(body or b"{}")
            except ValueError:
                options = {}
            self.server.reset(knobs=bool(isinstance(options, dict) and options.get("knobs")))
            self._send(200, b'{"ok":true}')
        else:
            self._generate(path, body)

    # ---- generateContent ------------------------------------------------------------------
    def _credential(self) -> tuple[str | None, bool]:
        """The caller's token or API key, and whether it came as an API key."""
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer ") and auth[7:].strip():
            return auth[7:].strip(), False
        key = (self.headers.get("x-goog-api-key") or "").strip()
        return (key, True) if key else (None, False)

    def _auth_refusal(self, knobs: Knobs) -> bool:
        """Answer 401/403 (or 400 for a bad API key, as Google does); True when refused."""
        token, is_key = self._credential()
        if token is None:
            self._fail("unauthenticated", 401)
            return True
        if knobs.require_token is not None and not hmac.compare_digest(
            token.encode(), knobs.require_token.encode()
        ):
            if is_key:
                message = "API key not valid. Please pass a valid API key."
                self._fail("unauthenticated", 400, message, details=API_KEY_INVALID)
            else:
                self._fail("unauthenticated", 401)
            return True
        if any(hmac.compare_digest(token.encode(), t.encode()) for t in knobs.forbidden_tokens):
            self._fail("forbidden", 403)
            return True
        return False

    def _generate(self, path: str, body: bytes) -> None:
        server, knobs = self.server, self.server.knobs.get()
        match = GENERATE_PATH.match(path)
        call: Call | None = None
        problem: str | None = None
        try:
            call = parse_call(body)
        except BadRequest as exc:
            problem = str(exc)
        route = "unknown"
        if match is not None:
            route = "gemini" if match["gemini"] else "express" if match["express"] else "vertex"
        server.stats.request(call.prompt if call else None, route)
        if call is not None:
            self._hostile = modes_for(knobs, call.prompt)
        if match is None:
            self._fail("not_found", 404, f"The requested URL {path} was not found on this server.")
            return
        if self._auth_refusal(knobs):
            return
        model = match["model"]
        if model not in MODELS or model in knobs.retired_models:
            kind = "gemini" if match["gemini"] else "vertex"
            resource = path.split(":")[0].split("/", 2)[2]
            self._fail("not_found", 404, not_found_message(kind, resource, match["ver"]))
            return
        if call is not None and problem is None:
            try:
                check_call(call, MODELS[model])
            except BadRequest as exc:
                problem = str(exc)
        if call is None or problem is not None or "[[BAD_REQUEST]]" in call.prompt:
            self._fail("bad_request", 400, problem)
            return
        refusal = server.stats.try_admit(knobs.capacity, knobs.rpm)
        if refusal is not None:
            self._fail(f"rate_limited_{refusal}", 429)
            return
        self._slot_held = True
        try:
            self._serve(model, call)
        finally:
            self._release_slot()

    def _release_slot(self) -> None:
        """Give back the concurrency slot once, before the answer leaves."""
        if getattr(self, "_slot_held", False):
            self._slot_held = False
            self.server.stats.release(self.server.knobs.get().sample_interval_s)

    def _serve(self, model: str, call: Call) -> None:
        server, knobs = self.server, self.server.knobs.get()
        u, normal = server.draw()
        delay = _latency(knobs, normal)
        if delay and server.stopping.wait(delay):
            self._drop()
            return
        fault = _fault(knobs, u)
        if fault == "dropped" or fault == "timeout":
            if fault == "timeout":
                server.stopping.wait(knobs.hang_s)
            server.stats.answered(fault, None, knobs.sample_interval_s)
            self._drop()
            return
        if fault == "error_500":
            self._fail(fault, 500)
            return
        if fault == "error_503" or "long_error" in self._hostile:
            self._fail(fault or "hostile_error", 503)
            return
        answer = marker_answer(model, call) or image_answer(
            model, call, server.pngs, tiny=knobs.tiny_images, text=knobs.image_text
        )
        self._answer(model, answer, knobs)

    def _answer(self, model: str, answer: Answer, knobs: Knobs) -> None:
        # Google bills a generated answer whether or not the client is still there to read it.
        micros = cost_micros(
            model, prompt_tokens=answer.prompt_tokens, output_tokens=answer.output_tokens
        )
        self.server.stats.bill(answer.prompt_tokens, answer.output_tokens, micros)
        self.server.stats.answered(answer.outcome, 200, knobs.sample_interval_s)
        credential = self._credential()[0]
        odd = answer_body(answer.body, self._hostile, credential, knobs.long_field_chars)
        self._send(200, json_bytes(answer.body) if odd is None else odd)


class EmulatorHandle:
    """A running emulator in this process; a context manager that stops it on exit."""

    def __init__(self, server: EmulatorServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    def stats(self) -> dict[str, Any]:
        return self._server.stats.snapshot()

    def knobs(self) -> dict[str, Any]:
        return self._server.knobs.get().as_dict()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self._server.configure(knobs).as_dict()

    def reset(self, *, knobs: bool = False) -> None:
        """Zero the counters; with ``knobs``, also restore the knobs it started with."""
        self._server.reset(knobs=knobs)

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> EmulatorServer:
    """A bound, not yet serving, emulator server."""
    from stencil.emulator.knobs import make_knobs

    return EmulatorServer((host, port), make_knobs(**knobs))


def start_emulator(*, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> EmulatorHandle:
    """Start an emulator on a background thread (port 0 picks a free port)."""
    server = make_server(host, port, **knobs)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.name = f"vertex-emulator-{server.server_address[1]}"
    thread.start()
    return EmulatorHandle(server, thread)
