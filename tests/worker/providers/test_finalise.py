"""What every provider's result goes through: bounded, redacted strings, sniffed images, sane
token counts; and the odd answers of the SDK (unreadable 200s, refused model ids)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from models.statuses import AttemptState
from models.tables import Attempt, Item
from stencil.catalog import cost_micros
from stencil.emulator import EmulatorHandle
from stencil.settings import Settings
from worker.providers import Provider, get_provider
from worker.providers.base import ImageRequest, ImageResult
from worker.providers.finalise import (
    LIMITS,
    MAX_OUTPUT_TOKENS,
    NOT_AN_IMAGE,
    UNREADABLE_ANSWER,
    estimated_cost,
    finalise,
)
from worker.providers.redact import make_redactor

SECRET = "ya29.canary-secret-token-0042"
OTHER_SECRET = "plain-canary-secret-77"  # not credential-shaped: only known by value
redact = make_redactor([SECRET, OTHER_SECRET])
MODEL = "gemini-2.5-flash-image"
REQUEST = ImageRequest(model=MODEL, prompt="A red bicycle on a white background")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
pytestmark = pytest.mark.filterwarnings("ignore:.*is not a valid:UserWarning")  # SDK, odd enums


def image(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format=kind)
    return buffer.getvalue()


def succeeded(
    data: bytes,
    mime: str = "image/png",
    *,
    prompt_tokens: int = 9,
    output_tokens: int = 1290,
    cost_micros: int = 0,
) -> ImageResult:
    return ImageResult(
        state=AttemptState.succeeded,
        image=data,
        mime=mime,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cost_micros=cost_micros,
    )


def test_limits_follow_the_table_definitions() -> None:
    attempt, item = Attempt.__table__.c, Item.__table__.c
    assert LIMITS["error_status"] == attempt.error_status.type.length  # type: ignore[attr-defined]
    assert LIMITS["model_version"] == attempt.model_version.type.length  # type: ignore[attr-defined]
    assert LIMITS["mime"] == item.content_type.type.length  # type: ignore[attr-defined]


def test_every_string_is_redacted_before_it_is_cut_to_its_column() -> None:
    echo = f"x+{SECRET}+{OTHER_SECRET}+" + "y" * 10_000
    result = ImageResult(
        state=AttemptState.transient,
        http_code=503,
        error_status=echo,
        finish_reason=echo,
        message=echo,
        model_version=echo,
        response_id=echo,
        traffic_type=echo,
        mime=echo,
    )

    finalise(result, request=REQUEST, redact=redact)

    for name, limit in LIMITS.items():
        value = getattr(result, name)
        assert value is not None and len(value) <= limit, name
        assert value.startswith("x+[redacted]+"), (name, value[:40])
        assert "canary" not in value


def test_hidden_characters_cannot_split_a_secret_past_the_redactor() -> None:
    hidden = f"v1 {SECRET[:8]}\x00{SECRET[8:]} \u202e{OTHER_SECRET[:5]}\u200b{OTHER_SECRET[5:]}"
    result = ImageResult(
        state=AttemptState.no_image,
        model_version=hidden,
        message="line one\nline two \ud800 end\x1b[31m",
    )

    finalise(result, request=REQUEST, redact=redact)

    assert result.model_version == "v1 [redacted] [redacted]"
    assert result.message == "line one\nline two  end[31m"  # newline kept, ESC and surrogate gone


@pytest.mark.parametrize(
    ("data", "label"),
    [(SVG, "image/png"), (b"<html><script>x</script></html>", "image/jpeg"), (b"", "image/png")],
)
def test_bytes_that_are_not_png_jpeg_or_webp_are_not_an_image(data: bytes, label: str) -> None:
    result = finalise(succeeded(data, label), request=REQUEST, redact=redact)

    assert result.state is AttemptState.no_image and result.finish_reason == NOT_AN_IMAGE
    assert result.image is None and result.mime is None
    assert result.message is not None and "not PNG, JPEG or WebP" in result.message
    assert result.cost_micros == 0  # billed as answered: this result said nothing was billed


@pytest.mark.parametrize(("kind", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_the_sniffed_type_replaces_the_label(kind: str, mime: str) -> None:
    result = finalise(succeeded(image(kind), "image/webp; x=1"), request=REQUEST, redact=redact)

    assert (result.state, result.mime) == (AttemptState.succeeded, mime)


@pytest.mark.parametrize(
    ("prompt_tokens", "output_tokens"),
    [
        (-150_000_000, 1290),
        (9, -1290),
        (10**15, 10**15),
        (9, MAX_OUTPUT_TOKENS + 1),
        (-(10**40), 0),
    ],
)
def test_token_counts_out_of_bounds_take_the_estimate_and_are_flagged(
    prompt_tokens: int, output_tokens: int
) -> None:
    answered = succeeded(
        image("PNG"),
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cost_micros=cost_micros(MODEL, prompt_tokens=prompt_tokens, output_tokens=output_tokens),
    )

    result = finalise(answered, request=REQUEST, redact=redact)

    assert result.state is AttemptState.succeeded
    assert 0 <= result.prompt_tokens <= 1_048_576 and 0 <= result.output_tokens <= 65_536
    assert result.cost_micros == cost_micros(
        MODEL, prompt_tokens=result.prompt_tokens, output_tokens=result.output_tokens
    )
    assert 0 < result.cost_micros <= estimated_cost(REQUEST)
    assert result.message is not None and result.message.startswith("the answer's usage is not")


def test_sane_counts_are_kept_and_a_cost_is_never_negative() -> None:
    kept = finalise(succeeded(image("PNG"), cost_micros=38_703), request=REQUEST, redact=redact)
    negative = finalise(
        ImageResult(state=AttemptState.no_image, cost_micros=-45_000_000),
        request=REQUEST,
        redact=redact,
    )

    assert (kept.prompt_tokens, kept.output_tokens, kept.cost_micros) == (9, 1290, 38_703)
    assert kept.message is None
    assert negative.cost_micros == 0


# ---- through the real SDK against the emulator ----------------------------------------------


def vertex(emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Provider:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    settings = Settings(
        vertex_project="p",
        vertex_access_token=SECRET,
        vertex_base_url=emu.url,
        request_timeout_s=5.0,
    )
    return get_provider("vertex", settings)


def test_an_unreadable_200_is_no_image_at_the_estimated_cost(
    emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.configure(hostile=["unparseable"])
    provider = vertex(emu, tmp_path, monkeypatch)

    result = provider.generate(REQUEST)

    assert result.state is AttemptState.no_image and result.finish_reason == UNREADABLE_ANSWER
    assert result.http_code == 200 and "could not be read" in (result.message or "")
    assert result.cost_micros == estimated_cost(REQUEST) == emu.stats()["bill_micros"]


@pytest.mark.parametrize("model", ["", "../../secrets", "gemini?key=x", "a&b"])
def test_a_model_id_the_sdk_refuses_is_invalid_and_nothing_is_sent(
    emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    provider = vertex(emu, tmp_path, monkeypatch)

    result = provider.generate(ImageRequest(model=model, prompt="a cat"))

    assert result.state is AttemptState.invalid and result.error_status == "INVALID_MODEL"
    assert "no call was made" in (result.message or "")
    assert emu.stats()["requests"] == 0


def test_an_unknown_model_answered_404_is_invalid_not_transient(
    emu: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = vertex(emu, tmp_path, monkeypatch)

    result = provider.generate(ImageRequest(model="gemini-9-imaginary", prompt="a cat"))

    assert (result.state, result.http_code) == (AttemptState.invalid, 404)


def test_logs_show_only_finalised_values(
    emu: EmulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.configure(hostile=["long_error"])
    provider = vertex(emu, tmp_path, monkeypatch)

    result = provider.generate(REQUEST)

    assert result.state is AttemptState.transient
    assert result.error_status is not None and len(result.error_status) <= LIMITS["error_status"]
    logged = [r.getMessage() for r in caplog.records if r.name == "worker.providers.finalise"]
    assert logged and result.error_status in logged[0]
    assert "canary" not in caplog.text
