"""The emulator's hostile answers at the HTTP level: what they say, and a bill that stays true."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from stencil.catalog import cost_micros
from stencil.emulator import EmulatorHandle
from stencil.emulator.hostile import HUGE_TOKENS, NEGATIVE_PROMPT_TOKENS

VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models/{model}:generateContent"
MODEL = "gemini-2.5-flash-image"
TOKEN = "echo-me-canary-1234"
PROMPT = "a lighthouse at dusk, evil"  # 26 characters: 7 prompt tokens
IMAGE_COST = cost_micros(MODEL, prompt_tokens=7, output_tokens=1290)


def post(emu: EmulatorHandle, prompt: str = PROMPT) -> tuple[int, bytes]:
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    request = urllib.request.Request(
        emu.url + VERTEX.format(model=MODEL),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def image_part(answer: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] = answer["candidates"][0]["content"]["parts"][0]["inlineData"]
    return part


def test_long_fields_echo_the_credential_and_bill_the_image(emu: EmulatorHandle) -> None:
    emu.configure(hostile=["long_fields"], long_field_chars=5000)

    code, raw = post(emu)
    answer = json.loads(raw)

    assert code == 200
    for text in (
        answer["modelVersion"],
        answer["responseId"],
        answer["usageMetadata"]["trafficType"],
        answer["candidates"][0]["finishReason"],
        image_part(answer)["mimeType"],
    ):
        assert len(text) == 5000 and TOKEN in text[:100] and text.endswith(TOKEN)
    assert image_part(answer)["mimeType"].startswith("image/png;")
    assert base64.b64decode(image_part(answer)["data"]).startswith(b"\x89PNG")
    assert emu.stats()["bill_micros"] == IMAGE_COST


def test_long_fields_reach_error_answers_and_long_error_is_not_billed(emu: EmulatorHandle) -> None:
    emu.configure(hostile=["long_fields"])
    bad_code, bad = post(emu, "bad [[BAD_REQUEST]] evil")
    emu.configure(hostile=["long_error"])
    code, raw = post(emu)

    for body in (bad, raw):
        error = json.loads(body)["error"]
        assert len(error["status"]) == len(error["message"]) == 10_000
        assert TOKEN in error["status"][:100]
    assert (bad_code, code) == (400, 503)
    assert emu.stats()["bill_micros"] == 0


def test_an_svg_labelled_png_is_billed_as_the_image(emu: EmulatorHandle) -> None:
    emu.configure(hostile=["svg_image"])

    code, raw = post(emu)
    part = image_part(json.loads(raw))
    data = base64.b64decode(part["data"])

    assert code == 200 and part["mimeType"] == "image/png"
    assert data.startswith(b"<svg") and b"<script>" in data
    assert emu.stats()["bill_micros"] == IMAGE_COST


@pytest.mark.parametrize(
    ("mode", "prompt_count", "output_count"),
    [("negative_tokens", NEGATIVE_PROMPT_TOKENS, -1290), ("huge_tokens", HUGE_TOKENS, HUGE_TOKENS)],
)
def test_odd_token_counts_leave_the_bill_true(
    emu: EmulatorHandle, mode: str, prompt_count: int, output_count: int
) -> None:
    emu.configure(hostile=[mode])

    usage = json.loads(post(emu)[1])["usageMetadata"]

    assert (usage["promptTokenCount"], usage["candidatesTokenCount"]) == (
        prompt_count,
        output_count,
    )
    assert emu.stats()["bill_micros"] == IMAGE_COST
    assert emu.stats()["prompt_tokens"] == 7


def test_an_unparseable_200_is_billed_like_the_image_it_was(emu: EmulatorHandle) -> None:
    emu.configure(hostile=["unparseable"])

    code, raw = post(emu)

    assert code == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    assert emu.stats()["bill_micros"] == IMAGE_COST


def test_hostile_answers_go_only_to_matching_prompts(emu: EmulatorHandle) -> None:
    emu.configure(hostile=["unparseable", "long_fields"], hostile_match="evil")

    plain = json.loads(post(emu, "a lighthouse at dawn")[1])

    assert plain["modelVersion"] == MODEL
    with pytest.raises(ValueError):
        json.loads(post(emu)[1])


@pytest.mark.parametrize(
    "knobs",
    [
        {"hostile": ["rude"]},
        {"hostile": "long_fields"},
        {"hostile_match": 3},
        {"long_field_chars": 0},
        {"long_field_chars": 1.5},
    ],
)
def test_bad_hostile_knobs_are_refused(emu: EmulatorHandle, knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        emu.configure(**knobs)
    assert emu.knobs()["hostile"] == []
