"""The vertex and gemini providers through the real google-genai SDK against the emulator."""

from __future__ import annotations

import dataclasses
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models.statuses import AttemptState
from stencil.catalog import cost_micros
from stencil.emulator import EmulatorHandle
from stencil.errors import ConfigError
from stencil.images import pixel_size_of
from stencil.settings import Settings
from worker.providers import Provider, get_provider
from worker.providers.base import ImageRequest, ImageResult, RefImage
from worker.providers.genai import GenaiProvider

TOKEN = "canary-token-7f3e9b21d4"
API_KEY = "AIzaCanaryKey-0123456789abcdefXYZ"
MODEL = "gemini-2.5-flash-image"
GOOGLE_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@pytest.fixture(autouse=True)
def _google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)


def settings(**values: Any) -> Settings:
    return Settings(**{"request_timeout_s": 5.0, **values})


def vertex(emu: EmulatorHandle, **values: Any) -> GenaiProvider:
    values = {"vertex_project": "proj", "vertex_access_token": TOKEN, **values}
    return GenaiProvider.from_settings("vertex", settings(vertex_base_url=emu.url, **values))


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def request(prompt: str = "A red bicycle", **values: Any) -> ImageRequest:
    return ImageRequest(model=values.pop("model", MODEL), prompt=prompt, **values)


def test_success_returns_the_image_tokens_and_cost(emu: EmulatorHandle) -> None:
    result = vertex(emu).generate(
        request(aspect_ratio="16:9", labels={"batch": "b_1", "item": "i_1"})
    )

    assert result.state is AttemptState.succeeded
    assert result.mime == "image/png"
    assert result.image is not None and pixel_size_of(result.image) == (1344, 768)
    assert result.output_tokens == 1290
    assert result.prompt_tokens == 4  # ceil(13 chars / 4)
    assert result.cost_micros == cost_micros(MODEL, prompt_tokens=4, output_tokens=1290)
    assert result.http_code == 200
    assert result.model_version == MODEL
    assert result.response_id
    assert result.traffic_type == "ON_DEMAND"
    stats = emu.stats()
    assert stats["routes"] == {"vertex": 1}
    assert stats["per_prompt"] == {"A red bicycle": 1}


def test_sized_model_returns_the_size_it_was_asked(emu: EmulatorHandle) -> None:
    model = "gemini-3.1-flash-image"
    result = vertex(emu).generate(request(model=model, aspect_ratio="1:1", image_size="2K"))

    assert result.state is AttemptState.succeeded
    assert result.image is not None and pixel_size_of(result.image) == (2048, 2048)
    assert result.output_tokens == 1684


@pytest.mark.parametrize(
    ("marker", "state", "reason", "message_part"),
    [
        ("[[SAFETY]]", AttemptState.blocked, "IMAGE_SAFETY", "Prohibited Use policy"),
        ("[[PROHIBITED]]", AttemptState.blocked, "PROHIBITED_CONTENT", "blocked"),
        ("[[NO_IMAGE]]", AttemptState.no_image, "NO_IMAGE", "without an image"),
        ("[[TEXT_ONLY]]", AttemptState.no_image, "STOP", "text only"),
    ],
)
def test_answers_without_an_image_are_classified_and_billed(
    emu: EmulatorHandle, marker: str, state: AttemptState, reason: str, message_part: str
) -> None:
    result = vertex(emu).generate(request(f"A cat {marker}"))

    assert result.state is state
    assert result.finish_reason == reason
    assert result.message is not None and message_part in result.message
    assert result.image is None
    assert result.http_code == 200
    assert result.prompt_tokens > 0
    expected = cost_micros(
        MODEL, prompt_tokens=result.prompt_tokens, output_tokens=result.output_tokens
    )
    assert result.cost_micros == expected > 0
    assert emu.stats()["bill_micros"] == result.cost_micros


def test_bad_request_is_invalid_with_googles_message(emu: EmulatorHandle) -> None:
    result = vertex(emu).generate(request("A dog [[BAD_REQUEST]]"))

    assert result.state is AttemptState.invalid
    assert result.http_code == 400
    assert result.error_status == "INVALID_ARGUMENT"
    assert result.message == "Request contains an invalid argument."


@pytest.mark.parametrize("model", ["gemini-0.9-nonexistent-image", MODEL])
def test_unknown_or_retired_model_is_invalid_naming_the_model(
    emu: EmulatorHandle, model: str
) -> None:
    emu.configure(retired_models=[MODEL])
    result = vertex(emu).generate(request(model=model))

    assert result.state is AttemptState.invalid
    assert result.http_code == 404
    assert result.message is not None
    assert f"model {model!r} is unknown or retired" in result.message
    assert "was not found" in result.message


@pytest.mark.parametrize(
    ("knobs", "state", "code", "status"),
    [
        ({"error_500_rate": 1.0}, AttemptState.transient, 500, "INTERNAL"),
        ({"error_503_rate": 1.0}, AttemptState.transient, 503, "UNAVAILABLE"),
        ({"capacity": 0}, AttemptState.rate_limited, 429, "RESOURCE_EXHAUSTED"),
        ({"drop_rate": 1.0}, AttemptState.transient, None, "CONNECTION"),
        ({"timeout_rate": 1.0, "hang_s": 3.0}, AttemptState.transient, None, "TIMEOUT"),
    ],
)
def test_failures_are_classified(
    emu: EmulatorHandle, knobs: dict[str, Any], state: AttemptState, code: int | None, status: str
) -> None:
    emu.configure(**knobs)
    result = vertex(emu, request_timeout_s=0.5).generate(request())

    assert result.state is state
    assert result.http_code == code
    assert result.error_status == status
    assert result.cost_micros == 0
    assert emu.stats()["requests"] == 1  # the SDK did not retry


def test_rate_limit_keeps_googles_wording(emu: EmulatorHandle) -> None:
    emu.configure(rpm=0)
    result = vertex(emu).generate(request())

    assert result.state is AttemptState.rate_limited
    assert result.message == "Resource exhausted, please try again later."


def test_recorded_cost_equals_the_emulators_bill(emu: EmulatorHandle) -> None:
    provider = vertex(emu)
    ref = RefImage(digest="d" * 64, mime="image/png", data=png())
    gs_ref = RefImage(digest="e" * 64, mime="image/png", uri="gs://bucket/ref.png")
    requests = [
        request("Studio photo of a linen shirt in sand", aspect_ratio="4:5"),
        request("Same shirt, navy", refs=(ref,)),
        request("Two references", refs=(ref, gs_ref), aspect_ratio="3:2"),
        request("Blocked one [[SAFETY]]", refs=(ref,)),
        request("Text only [[TEXT_ONLY]]"),
        request("Pro model", model="gemini-3-pro-image", image_size="4K"),
        request("Flash 3.1", model="gemini-3.1-flash-image", image_size="0.5K", refs=(ref,)),
    ]
    results = [provider.generate(r) for r in requests]

    stats = emu.stats()
    assert sum(r.cost_micros for r in results) == stats["bill_micros"]
    assert sum(r.prompt_tokens for r in results) == stats["prompt_tokens"]
    assert sum(r.output_tokens for r in results) == stats["output_tokens"]
    assert results[1].prompt_tokens == 4 + 258  # ceil(16 chars / 4) + one inline image
    assert results[2].prompt_tokens == 4 + 2 * 258
    assert [r.state for r in results].count(AttemptState.succeeded) == 5


def test_express_mode_uses_the_api_key_path(emu: EmulatorHandle) -> None:
    emu.configure(require_token=API_KEY)
    provider = GenaiProvider.from_settings(
        "vertex", settings(vertex_api_key=API_KEY, vertex_base_url=emu.url)
    )
    result = provider.generate(request(labels={"item": "i_1"}))

    assert result.state is AttemptState.succeeded
    assert emu.stats()["routes"] == {"express": 1}


def test_gemini_api_mode_uses_the_models_path(emu: EmulatorHandle) -> None:
    emu.configure(require_token=API_KEY)
    provider = GenaiProvider.from_settings(
        "gemini", settings(gemini_api_key=API_KEY, gemini_base_url=emu.url)
    )
    result = provider.generate(request(aspect_ratio="9:16", labels={"item": "i_1"}))

    assert result.state is AttemptState.succeeded
    assert result.image is not None and pixel_size_of(result.image) == (768, 1344)
    assert emu.stats()["routes"] == {"gemini": 1}


def test_refused_credentials_are_auth(emu: EmulatorHandle) -> None:
    emu.configure(require_token="another-token")
    unauthenticated = vertex(emu).generate(request())
    emu.configure(require_token=None, forbidden_tokens=[TOKEN])
    forbidden = vertex(emu).generate(request())
    emu.configure(require_token="another-key", forbidden_tokens=[])
    bad_key = GenaiProvider.from_settings(
        "gemini", settings(gemini_api_key=API_KEY, gemini_base_url=emu.url)
    ).generate(request())

    assert (unauthenticated.state, unauthenticated.http_code) == (AttemptState.auth, 401)
    assert (forbidden.state, forbidden.http_code) == (AttemptState.auth, 403)
    assert (bad_key.state, bad_key.http_code) == (AttemptState.auth, 400)


def _all_outcomes(emu: EmulatorHandle, provider_for: Any) -> list[ImageResult]:
    results = []
    for prompt in ("ok", "[[SAFETY]]", "[[PROHIBITED]]", "[[NO_IMAGE]]", "[[TEXT_ONLY]]"):
        results.append(provider_for().generate(request(prompt)))
    results.append(provider_for().generate(request("[[BAD_REQUEST]]")))
    results.append(provider_for().generate(request(model="gemini-0-gone-image")))
    for knobs in (
        {"error_500_rate": 1.0},
        {"capacity": 0},
        {"drop_rate": 1.0},
        {"timeout_rate": 1.0, "hang_s": 2.0},
        {"require_token": "x-other"},
        {"forbidden_tokens": [TOKEN, API_KEY]},
        {"hostile": ["long_fields"]},  # every field of the answer echoes the credential
        {"hostile": ["long_fields", "svg_image"]},
        {"hostile": ["long_error"]},
    ):
        emu.reset(knobs=True)
        emu.configure(**knobs)
        results.append(provider_for().generate(request()))
    return results


@pytest.mark.filterwarnings("ignore:.*is not a valid:UserWarning")  # the SDK on odd enums
@pytest.mark.parametrize("mode", ["vertex", "express", "gemini"])
def test_canary_credentials_never_reach_results_or_logs(
    emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if mode == "vertex":
        config = {"vertex_project": "p", "vertex_access_token": TOKEN, "vertex_base_url": emu.url}
    elif mode == "express":
        config = {"vertex_api_key": API_KEY, "vertex_base_url": emu.url}
    else:
        config = {"gemini_api_key": API_KEY, "gemini_base_url": emu.url}
    name = "gemini" if mode == "gemini" else "vertex"

    def provider_for() -> Provider:
        return get_provider(name, settings(request_timeout_s=0.5, **config))

    results = _all_outcomes(emu, provider_for)

    assert len({r.state for r in results}) >= 6
    for result in results:
        text = repr(dataclasses.replace(result, image=None))
        assert TOKEN not in text and API_KEY not in text
    assert any(r.name == "worker.providers.finalise" for r in caplog.records)  # results logged
    assert TOKEN not in caplog.text and API_KEY not in caplog.text


def test_client_is_made_once_and_shared_by_threads(emu: EmulatorHandle) -> None:
    provider = vertex(emu)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(provider.generate, [request(f"p{i}") for i in range(24)]))

    assert provider.client() is provider.client()
    assert all(r.state is AttemptState.succeeded for r in results)
    assert len(emu.stats()["per_prompt"]) == 24


def test_missing_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STENCIL_VERTEX_PROJECT"):
        GenaiProvider.from_settings("vertex", settings())
    with pytest.raises(ConfigError, match="STENCIL_GEMINI_API_KEY"):
        GenaiProvider.from_settings("gemini", settings())


def test_missing_default_credentials_is_a_config_error(emu: EmulatorHandle) -> None:
    provider = GenaiProvider.from_settings(
        "vertex", settings(vertex_project="proj", vertex_base_url=emu.url)
    )

    with pytest.raises(ConfigError, match="Application Default Credentials"):
        provider.generate(request())
    assert emu.stats()["requests"] == 0
