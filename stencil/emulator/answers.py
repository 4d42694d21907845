"""What the emulated endpoint reads and writes: requests, image answers and Google's error shape."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from stencil.catalog import MODELS, ModelSpec, pixel_size
from stencil.emulator.drawn import text_for, text_png

TOKENS_PER_INLINE_IMAGE = 258
TEXT_ANSWER = "I can describe the scene, but I did not draw an image for this request."
SAFETY_MESSAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt."
)
PALETTE = (
    (230, 57, 70),
    (241, 250, 238),
    (168, 218, 220),
    (69, 123, 157),
    (29, 53, 87),
    (244, 162, 97),
    (42, 157, 143),
    (233, 196, 106),
)

# Google's wording for each error the emulator gives.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    ),
    403: ("PERMISSION_DENIED", "Permission denied on resource (or it may not exist)."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource exhausted, please try again later."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
}


class BadRequest(Exception):
    """The request body cannot be served (400 INVALID_ARGUMENT)."""


def error_body(code: int, message: str | None = None, details: list[Any] | None = None) -> bytes:
    """Google's error envelope, as JSON bytes."""
    status, default = ERRORS[code]
    error: dict[str, Any] = {"code": code, "message": message or default, "status": status}
    if details:
        error["details"] = details
    return json_bytes({"error": error})


def json_bytes(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def not_found_message(kind: str, resource: str, version: str) -> str:
    """Google's 404 wording for an unknown or retired model."""
    if kind == "gemini":
        return (
            f"{resource} is not found for API version {version}, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods."
        )
    return (
        f"Publisher Model `{resource}` was not found or your project does not have access to "
        "it. Please ensure you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
    )


@dataclass
class Call:
    """The parts of a generateContent body the emulator uses."""

    prompt: str = ""
    inline_images: int = 0
    file_images: int = 0
    aspect_ratio: str | None = None
    image_size: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _get(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    return mapping.get(camel, mapping.get(snake))


def parse_call(body: bytes) -> Call:
    """Read a generateContent body (camelCase or snake_case keys); BadRequest if malformed."""
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Invalid JSON payload received.") from exc
    if not isinstance(payload, dict):
        raise BadRequest("Invalid JSON payload received.")
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("contents is not specified")
    call = Call()
    texts: list[str] = []
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise BadRequest("contents.parts must not be empty.")
        for part in parts:
            _read_part(part, call, texts)
    call.prompt = "\n".join(texts)
    config = _get(payload, "generationConfig", "generation_config") or {}
    image_config = _get(config, "imageConfig", "image_config") or {}
    call.aspect_ratio = _get(image_config, "aspectRatio", "aspect_ratio")
    call.image_size = _get(image_config, "imageSize", "image_size")
    labels = payload.get("labels") or {}
    call.labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    return call


def _read_part(part: Any, call: Call, texts: list[str]) -> None:
    if not isinstance(part, dict):
        raise BadRequest("Invalid JSON payload received. Part must be an object.")
    if isinstance(part.get("text"), str):
        texts.append(part["text"])
        return
    inline = _get(part, "inlineData", "inline_data")
    if isinstance(inline, dict):
        mime = _get(inline, "mimeType", "mime_type")
        try:
            # the SDK sends URL-safe base64 (as Google accepts); the docs show the standard one
            data = str(inline.get("data") or "").replace("-", "+").replace("_", "/")
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("Invalid value at 'contents[0].parts[0].inline_data.data'") from exc
        if not isinstance(mime, str) or not mime.startswith("image/"):
            raise BadRequest(f"Unsupported MIME type: {mime}")
        call.inline_images += 1
        return
    file_data = _get(part, "fileData", "file_data")
    if isinstance(file_data, dict):
        uri = _get(file_data, "fileUri", "file_uri")
        if not isinstance(uri, str) or not uri:
            raise BadRequest("file_data.file_uri is required.")
        call.file_images += 1
        return
    raise BadRequest("Invalid JSON payload received. Unknown part type.")


def check_call(call: Call, spec: ModelSpec) -> None:
    """The model's limits; BadRequest naming the first one broken."""
    if call.aspect_ratio is not None and call.aspect_ratio not in spec.aspect_ratios:
        raise BadRequest(f"Unsupported aspect ratio: {call.aspect_ratio}")
    if call.image_size is not None and call.image_size not in spec.image_sizes:
        raise BadRequest(f"Unsupported image size: {call.image_size}")
    if call.inline_images + call.file_images > spec.max_ref_images:
        raise BadRequest(
            f"Too many images in the request: at most {spec.max_ref_images} are supported."
        )


def prompt_tokens(call: Call) -> int:
    """Prompt tokens as Google counts them, roughly: chars/4 plus 258 per image."""
    images = call.inline_images + call.file_images
    return math.ceil(len(call.prompt) / 4) + TOKENS_PER_INLINE_IMAGE * images


class PngCache:
    """Encoded PNGs per (width, height, colour), base64-encoded once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, int, int], str] = {}

    def get(self, width: int, height: int, colour: int) -> str:
        key = (width, height, colour)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        image = Image.new("RGB", (width, height), PALETTE[colour])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        with self._lock:
            self._cache[key] = encoded
        return encoded


def colour_of(prompt: str) -> int:
    return hashlib.sha256(prompt.encode()).digest()[0] % len(PALETTE)


def _usage(prompt: int, output: int | None, call: Call) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "totalTokenCount": prompt + (output or 0),
        "trafficType": "ON_DEMAND",
        "promptTokensDetails": _prompt_details(call),
    }
    if output is not None:
        usage["candidatesTokenCount"] = output
        usage["candidatesTokensDetails"] = [{"modality": "IMAGE", "tokenCount": output}]
    return usage


def _prompt_details(call: Call) -> list[dict[str, Any]]:
    details = [{"modality": "TEXT", "tokenCount": math.ceil(len(call.prompt) / 4)}]
    images = call.inline_images + call.file_images
    if images:
        details.append({"modality": "IMAGE", "tokenCount": TOKENS_PER_INLINE_IMAGE * images})
    return details


def _envelope(model: str, body: dict[str, Any]) -> dict[str, Any]:
    body["modelVersion"] = model
    body["responseId"] = secrets.token_urlsafe(15)
    body["createTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return body


@dataclass(frozen=True)
class Answer:
    """One 200 answer: the body and the tokens it bills."""

    outcome: str
    body: dict[str, Any]
    prompt_tokens: int
    output_tokens: int


def image_answer(
    model: str, call: Call, pngs: PngCache, *, tiny: bool, text: str | None = None
) -> Answer:
    """The image answer; with ``text`` (the knob ``image_text``) the image shows that text."""
    spec = MODELS[model]
    width, height = (8, 8) if tiny else pixel_size(call.aspect_ratio, call.image_size)
    if text is not None and not tiny:
        shown = text_for(text, call.prompt)
        data = text_png(width, height, PALETTE[colour_of(call.prompt)], shown)
    else:
        data = pngs.get(width, height, colour_of(call.prompt))
    output = spec.output_tokens(call.image_size)
    prompt = prompt_tokens(call)
    part = {"inlineData": {"mimeType": "image/png", "data": data}}
    candidate = {
        "content": {"role": "model", "parts": [part]},
        "finishReason": "STOP",
    }
    body = {"candidates": [candidate], "usageMetadata": _usage(prompt, output, call)}
    return Answer("ok", _envelope(model, body), prompt, output)


def marker_answer(model: str, call: Call) -> Answer | None:
    """The 200 answer a prompt marker asks for, or None when the prompt carries none."""
    prompt = prompt_tokens(call)
    text = call.prompt
    if "[[PROHIBITED]]" in text:
        body: dict[str, Any] = {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": _usage(prompt, None, call),
        }
        return Answer("blocked", _envelope(model, body), prompt, 0)
    if "[[SAFETY]]" in text:
        candidate = {
            "content": {"role": "model"},
            "finishReason": "IMAGE_SAFETY",
            "finishMessage": SAFETY_MESSAGE,
        }
        body = {"candidates": [candidate], "usageMetadata": _usage(prompt, None, call)}
        return Answer("blocked", _envelope(model, body), prompt, 0)
    if "[[NO_IMAGE]]" in text:
        candidate = {"content": {"role": "model"}, "finishReason": "NO_IMAGE"}
        body = {"candidates": [candidate], "usageMetadata": _usage(prompt, None, call)}
        return Answer("no_image", _envelope(model, body), prompt, 0)
    if "[[TEXT_ONLY]]" in text:
        output = math.ceil(len(TEXT_ANSWER) / 4)
        candidate = {
            "content": {"role": "model", "parts": [{"text": TEXT_ANSWER}]},
            "finishReason": "STOP",
        }
        usage = _usage(prompt, output, call)
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": output}]
        body = {"candidates": [candidate], "usageMetadata": usage}
        return Answer("text_only", _envelope(model, body), prompt, output)
    return None
