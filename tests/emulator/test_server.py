"""The Vertex emulator at the HTTP level: paths, auth, bodies, limits and admin endpoints."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import Image

from stencil.catalog import cost_micros
from stencil.emulator import EmulatorClient, EmulatorHandle
from stencil.errors import StencilError

VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models/{model}:generateContent"
MODEL = "gemini-2.5-flash-image"


def post(
    emu: EmulatorHandle,
    body: dict[str, Any],
    *,
    path: str = VERTEX.format(model=MODEL),
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        emu.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"}
        if headers is None
        else headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def text_body(text: str = "hello", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        body["generationConfig"] = {"imageConfig": config}
    return body


def image_of(answer: dict[str, Any]) -> Image.Image:
    data = answer["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_missing_credentials_get_401_in_googles_shape(emu: EmulatorHandle) -> None:
    code, answer = post(emu, text_body(), headers={"Content-Type": "application/json"})

    assert code == 401
    assert answer["error"]["code"] == 401
    assert answer["error"]["status"] == "UNAUTHENTICATED"
    assert emu.stats()["outcomes"] == {"unauthenticated": 1}


def test_api_key_header_is_accepted_on_every_path(emu: EmulatorHandle) -> None:
    headers = {"Content-Type": "application/json", "x-goog-api-key": "k"}
    for path in (
        VERTEX.format(model=MODEL),
        f"/v1beta1/publishers/google/models/{MODEL}:generateContent",
        f"/v1beta/models/{MODEL}:generateContent",
    ):
        code, _ = post(emu, text_body(), path=path, headers=headers)
        assert code == 200
    assert emu.stats()["routes"] == {"vertex": 1, "express": 1, "gemini": 1}


def test_pixel_sizes_and_tokens_follow_the_catalog(emu: EmulatorHandle) -> None:
    code, answer = post(emu, text_body(aspectRatio="21:9"))
    assert code == 200
    assert image_of(answer).size == (1536, 672)
    assert answer["usageMetadata"]["candidatesTokenCount"] == 1290

    path = VERTEX.format(model="gemini-3.1-flash-image")
    code, answer = post(emu, text_body(aspectRatio="16:9", imageSize="2K"), path=path)
    assert code == 200
    assert image_of(answer).size == (2688, 1536)
    assert answer["usageMetadata"]["candidatesTokenCount"] == 1684
    assert answer["modelVersion"] == "gemini-3.1-flash-image"
    assert answer["responseId"] and answer["createTime"].endswith("Z")


def test_camel_and_snake_case_parts_count_as_images(emu: EmulatorHandle) -> None:
    data = base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode()
    parts = [
        {"inlineData": {"mimeType": "image/png", "data": data}},
        {"inline_data": {"mime_type": "image/png", "data": data}},
        {"file_data": {"file_uri": "gs://b/r.png", "mime_type": "image/png"}},
        {"text": "twelve chars"},
    ]
    code, answer = post(emu, {"contents": [{"role": "user", "parts": parts}]})

    assert code == 200
    assert answer["usageMetadata"]["promptTokenCount"] == 3 + 3 * 258
    assert emu.stats()["prompt_tokens"] == 3 + 3 * 258


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (text_body(aspectRatio="7:3"), VERTEX.format(model=MODEL)),
        (text_body(imageSize="2K"), VERTEX.format(model=MODEL)),
        ({"contents": []}, VERTEX.format(model=MODEL)),
        (text_body("[[BAD_REQUEST]] please"), VERTEX.format(model=MODEL)),
    ],
)
def test_bad_bodies_get_400(emu: EmulatorHandle, body: dict[str, Any], path: str) -> None:
    code, answer = post(emu, body, path=path)

    assert code == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"


def test_unknown_model_gets_googles_404(emu: EmulatorHandle) -> None:
    code, answer = post(emu, text_body(), path=VERTEX.format(model="imagen-0"))

    assert code == 404
    assert answer["error"]["status"] == "NOT_FOUND"
    assert (
        "Publisher Model `projects/p/locations/us-central1/publishers/google/models/imagen-0`"
        in (answer["error"]["message"])
    )


def test_capacity_answers_429_at_once_when_exceeded(emu: EmulatorHandle) -> None:
    emu.configure(capacity=2, latency_mean_s=0.3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: post(emu, text_body(f"p{i}")), range(8)))

    codes = sorted(code for code, _ in results)
    assert 200 in codes and 429 in codes
    assert all(code in (200, 429) for code in codes)
    limited = [a for code, a in results if code == 429]
    assert limited[0]["error"] == {
        "code": 429,
        "message": "Resource exhausted, please try again later.",
        "status": "RESOURCE_EXHAUSTED",
    }
    stats = emu.stats()
    assert stats["max_in_flight"] == 2
    assert stats["outcomes"]["rate_limited_capacity"] == codes.count(429)
    assert stats["in_flight"] == 0


def test_rpm_cap_answers_429_beyond_it(emu: EmulatorHandle) -> None:
    emu.configure(rpm=3)
    codes = [post(emu, text_body(f"p{i}"))[0] for i in range(5)]

    assert codes == [200, 200, 200, 429, 429]


def test_bill_counts_every_billable_200(emu: EmulatorHandle) -> None:
    answers = [post(emu, text_body(t))[1] for t in ("ok", "x [[SAFETY]]", "y [[PROHIBITED]]")]
    expected = sum(
        cost_micros(
            MODEL,
            prompt_tokens=a["usageMetadata"]["promptTokenCount"],
            output_tokens=a["usageMetadata"].get("candidatesTokenCount", 0),
        )
        for a in answers
    )
    assert answers[1]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert answers[2]["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert "candidates" not in answers[2]
    stats = emu.stats()
    assert stats["bill_micros"] == expected
    assert stats["per_prompt"] == {"ok": 1, "x [[SAFETY]]": 1, "y [[PROHIBITED]]": 1}
    assert stats["codes"] == {"200": 3}


def test_admin_endpoints_work_from_the_client(emu: EmulatorHandle) -> None:
    client = EmulatorClient(emu.url)
    knobs = client.configure(error_503_rate=1.0, require_token="secret-token")
    assert knobs["error_503_rate"] == 1.0
    assert knobs["require_token"] == "<set>"  # never echoed

    code, answer = post(emu, text_body(), headers={"Authorization": "Bearer secret-token"})
    assert (code, answer["error"]["status"]) == (503, "UNAVAILABLE")
    stats = client.stats()
    assert stats["codes"] == {"503": 1}
    assert stats["timeline"] and len(stats["timeline"][0]) == 3

    client.reset(knobs=True)
    assert client.stats()["requests"] == 0
    assert client.knobs()["error_503_rate"] == 0.0
    with pytest.raises(StencilError, match="unknown knob"):
        client.configure(no_such_knob=1)
    with pytest.raises(StencilError, match="out of range"):
        client.configure(drop_rate=2)


def test_runs_as_a_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "stencil.emulator", "--port", "0", "--capacity", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        client = EmulatorClient(url)
        client.wait_ready()
        assert client.knobs()["capacity"] == 5
        assert client.stats()["requests"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
