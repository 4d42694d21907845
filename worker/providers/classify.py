"""The failure taxonomy: what the google-genai SDK returned or raised, as an :class:`ImageResult`.

=============================================  ================  ============================
answer                                         state             reason kept in
=============================================  ================  ============================
200 with an image part                         succeeded
200, finishReason of the safety family, or     blocked           finish_reason (+ message:
promptFeedback.blockReason                                       finishMessage if any)
200, NO_IMAGE / IMAGE_OTHER / text only / ...  no_image          finish_reason, message
429 RESOURCE_EXHAUSTED                         rate_limited      error_status, message
408, 5xx, connection error, timeout            transient         error_status, message
400 (a bad API key: auth), other 4xx           invalid           message (Google's words)
404                                            invalid           message names the model
401, 403, refused token refresh                auth              message
=============================================  ================  ============================

A 200 without an image still bills its usage, so its tokens and cost are filled in. Messages
pass through a redactor so that no token or key reaches a result or a log.

Two answers are classified in ``genai.py`` (the SDK raises for them): a 200 whose body cannot be
read is ``no_image`` (UNREADABLE_ANSWER, costed at the estimate), and a model id the SDK refuses
is ``invalid`` with no call made. Every result then goes through ``finalise.py``: strings
redacted and bounded, image bytes sniffed (not PNG/JPEG/WebP: ``no_image``, NOT_AN_IMAGE),
token counts checked.
"""

from __future__ import annotations

from typing import Any

import httpx2
from google.auth import exceptions as auth_errors
from google.genai import errors as genai_errors
from google.genai import types

from models.statuses import AttemptState
from stencil.catalog import cost_micros
from worker.providers.base import ImageResult
from worker.providers.redact import Redactor, make_redactor

BLOCK_REASONS = frozenset(
    {
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "MODEL_ARMOR",
        "JAILBREAK",
    }
)
TRANSIENT_CODES = frozenset({408, 500, 502, 503, 504})
__all__ = ["Redactor", "classify_error", "classify_response", "make_redactor"]  # redactor: old home


def _value(enum_or_str: Any) -> str | None:
    if enum_or_str is None:
        return None
    return str(getattr(enum_or_str, "value", enum_or_str))


def _billed(result: ImageResult, response: types.GenerateContentResponse, model: str) -> None:
    usage = response.usage_metadata
    if usage is not None:
        result.prompt_tokens = usage.prompt_token_count or 0
        result.output_tokens = (usage.candidates_token_count or 0) + (
            usage.thoughts_token_count or 0
        )
        result.traffic_type = _value(usage.traffic_type)
    result.cost_micros = cost_micros(
        model, prompt_tokens=result.prompt_tokens, output_tokens=result.output_tokens
    )
    result.model_version = response.model_version
    result.response_id = response.response_id


def classify_response(
    response: types.GenerateContentResponse, *, model: str, redact: Redactor
) -> ImageResult:
    """Classify a 200 answer: an image, a safety block, or an answer without an image."""
    result = ImageResult(state=AttemptState.no_image, http_code=200)
    _billed(result, response, model)
    feedback = response.prompt_feedback
    block = _value(feedback.block_reason) if feedback is not None else None
    candidate = response.candidates[0] if response.candidates else None
    parts = (candidate.content.parts if candidate and candidate.content else None) or []
    for part in parts:
        inline = part.inline_data
        if part.thought:
            continue  # an interim "thinking" image, not the answer
        if inline is not None and inline.data and (inline.mime_type or "").startswith("image/"):
            result.state = AttemptState.succeeded
            result.image = inline.data
            result.mime = inline.mime_type
            result.finish_reason = _value(candidate.finish_reason) if candidate else None
            return result
    finish = _value(candidate.finish_reason) if candidate else None
    finish_message = candidate.finish_message if candidate else None
    if block and block != "BLOCKED_REASON_UNSPECIFIED":
        result.state = AttemptState.blocked
        result.finish_reason = block
        detail = feedback.block_reason_message if feedback is not None else None
        result.message = redact(detail or f"the prompt was blocked ({block})")
    elif finish in BLOCK_REASONS:
        result.state = AttemptState.blocked
        result.finish_reason = finish
        result.message = redact(finish_message or f"the image was blocked ({finish})")
    else:
        result.finish_reason = finish or ("NO_CANDIDATES" if candidate is None else None)
        text = " ".join(p.text for p in parts if p.text).strip()
        if finish_message:
            result.message = redact(finish_message)
        elif candidate is None:
            result.message = "the model answered without a candidate"
        elif text:
            result.message = redact(f"the model answered with text only: {text[:300]}")
        elif finish and finish != "STOP":
            result.message = f"the model answered without an image ({finish})"
        else:
            result.message = "the model answered without an image"
    return result


def classify_error(exc: BaseException, *, model: str, redact: Redactor) -> ImageResult | None:
    """Classify what a call raised; None for an exception that is not an answer (a bug)."""
    if isinstance(exc, genai_errors.APIError):
        return _classify_api_error(exc, model=model, redact=redact)
    if isinstance(exc, httpx2.TimeoutException):
        return ImageResult(
            state=AttemptState.transient,
            error_status="TIMEOUT",
            message=redact(f"the call timed out ({type(exc).__name__}: {exc})"),
        )
    if isinstance(exc, httpx2.TransportError):
        return ImageResult(
            state=AttemptState.transient,
            error_status="CONNECTION",
            message=redact(f"the connection failed ({type(exc).__name__}: {exc})"),
        )
    if isinstance(exc, auth_errors.RefreshError):
        return ImageResult(
            state=AttemptState.auth,
            error_status="UNAUTHENTICATED",
            message=redact(f"the credentials could not be refreshed: {exc}"),
        )
    if isinstance(exc, auth_errors.TransportError):
        return ImageResult(
            state=AttemptState.transient,
            error_status="CONNECTION",
            message=redact(f"the token service could not be reached: {exc}"),
        )
    return None


def _api_key_invalid(exc: genai_errors.APIError) -> bool:
    text = f"{exc.message or ''} {exc.details!r}"
    return "API_KEY_INVALID" in text or "API key not valid" in text


def _classify_api_error(exc: genai_errors.APIError, *, model: str, redact: Redactor) -> ImageResult:
    code = int(exc.code) if exc.code else None
    status = str(exc.status) if exc.status else None
    google = redact(str(exc.message or status or "no message"))
    result = ImageResult(state=AttemptState.invalid, http_code=code, error_status=status)
    if code == 429:
        result.state = AttemptState.rate_limited
        result.message = google
    elif code in TRANSIENT_CODES or (code is not None and code >= 500):
        result.state = AttemptState.transient
        result.message = google
    elif code in (401, 403) or (code == 400 and _api_key_invalid(exc)):
        result.state = AttemptState.auth
        result.message = f"the credentials were refused ({code} {status}): {google}"
    elif code == 404:
        result.message = (
            f"model {model!r} is unknown or retired: Google answered 404 {status}: {google}"
        )
    else:
        result.message = google
    return result
