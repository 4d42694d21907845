"""The failure taxonomy on SDK objects built by hand (cases the emulator does not produce)."""

from __future__ import annotations

import httpx2
import pytest
from google.auth import exceptions as auth_errors
from google.genai import errors, types

from models.statuses import AttemptState
from worker.providers.classify import classify_error, classify_response, make_redactor

SECRET = "ya29.canary-secret-token"
redact = make_redactor([SECRET, "AIzaSyCanary0123456789abcdefghijk"])


def api_error(code: int, message: str, status: str) -> errors.APIError:
    body = {"error": {"code": code, "message": message, "status": status}}
    cls = errors.ClientError if code < 500 else errors.ServerError
    return cls(code, body)


@pytest.mark.parametrize(
    ("code", "status", "state"),
    [
        (429, "RESOURCE_EXHAUSTED", AttemptState.rate_limited),
        (500, "INTERNAL", AttemptState.transient),
        (502, "BAD_GATEWAY", AttemptState.transient),
        (504, "DEADLINE_EXCEEDED", AttemptState.transient),
        (400, "INVALID_ARGUMENT", AttemptState.invalid),
        (404, "NOT_FOUND", AttemptState.invalid),
        (401, "UNAUTHENTICATED", AttemptState.auth),
        (403, "PERMISSION_DENIED", AttemptState.auth),
    ],
)
def test_api_errors_map_to_states_and_hide_secrets(
    code: int, status: str, state: AttemptState
) -> None:
    exc = api_error(
        code, f"failed for Bearer {SECRET} and key=AIzaSyCanary0123456789abcdefghijk", status
    )
    result = classify_error(exc, model="m-1", redact=redact)

    assert result is not None
    assert (result.state, result.http_code, result.error_status) == (state, code, status)
    assert result.message is not None
    assert SECRET not in result.message and "AIzaSyCanary" not in result.message


@pytest.mark.parametrize(
    ("exc", "state", "status"),
    [
        (httpx2.ConnectError("refused"), AttemptState.transient, "CONNECTION"),
        (httpx2.ReadError("reset"), AttemptState.transient, "CONNECTION"),
        (httpx2.RemoteProtocolError("closed"), AttemptState.transient, "CONNECTION"),
        (httpx2.ReadTimeout("slow"), AttemptState.transient, "TIMEOUT"),
        (httpx2.ConnectTimeout("slow"), AttemptState.transient, "TIMEOUT"),
        (auth_errors.RefreshError("invalid_grant"), AttemptState.auth, "UNAUTHENTICATED"),
    ],
)
def test_transport_and_auth_exceptions(exc: Exception, state: AttemptState, status: str) -> None:
    result = classify_error(exc, model="m", redact=redact)

    assert result is not None
    assert (result.state, result.error_status) == (state, status)


def test_bugs_are_not_classified() -> None:
    assert classify_error(KeyError("x"), model="m", redact=redact) is None


def test_no_candidates_without_block_reason_is_no_image() -> None:
    response = types.GenerateContentResponse.model_validate(
        {"usageMetadata": {"promptTokenCount": 10}, "modelVersion": "gemini-2.5-flash-image"}
    )
    result = classify_response(response, model="gemini-2.5-flash-image", redact=redact)

    assert result.state is AttemptState.no_image
    assert result.finish_reason == "NO_CANDIDATES"
    assert result.prompt_tokens == 10 and result.cost_micros == 3


@pytest.mark.parametrize(
    ("reason", "state"),
    [
        ("IMAGE_PROHIBITED_CONTENT", AttemptState.blocked),
        ("PROHIBITED_CONTENT", AttemptState.blocked),
        ("SAFETY", AttemptState.blocked),
        ("IMAGE_OTHER", AttemptState.no_image),
        ("IMAGE_RECITATION", AttemptState.no_image),
    ],
)
def test_finish_reasons(reason: str, state: AttemptState) -> None:
    response = types.GenerateContentResponse.model_validate(
        {
            "candidates": [{"content": {"role": "model"}, "finishReason": reason}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 0},
        }
    )
    result = classify_response(response, model="gemini-2.5-flash-image", redact=redact)

    assert (result.state, result.finish_reason) == (state, reason)
    assert result.message


def test_thought_images_are_not_the_answer() -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    response = types.GenerateContentResponse.model_validate(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{**image, "thought": True}]},
                    "finishReason": "STOP",
                }
            ],
        }
    )
    result = classify_response(response, model="gemini-3-pro-image", redact=redact)

    assert result.state is AttemptState.no_image
