"""The offline preview provider: deterministic, free, at the model's real pixel size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from models.statuses import AttemptState
from stencil.catalog import pixel_size
from stencil.settings import Settings
from worker.providers import get_provider
from worker.providers.base import ImageRequest, RefImage
from worker.providers.finalise import Checked
from worker.providers.preview import BANNER_INK, PreviewProvider, background_for, printable

MODEL = "gemini-2.5-flash-image"
PROMPT = "Studio photo of a ceramic mug on a walnut table, soft window light"


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _encoded(fmt: str, color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def test_result_is_a_free_succeeded_png_marked_preview() -> None:
    result = PreviewProvider().generate(ImageRequest(model=MODEL, prompt=PROMPT))

    assert result.state is AttemptState.succeeded
    assert result.mime == "image/png"
    assert result.image is not None and result.image.startswith(b"\x89PNG\r\n\x1a\n")
    assert result.cost_micros == 0
    assert (result.prompt_tokens, result.output_tokens) == (0, 0)
    assert result.preview is True
    assert result.model_version == "preview"
    assert result.http_code is None


def test_same_request_gives_identical_bytes() -> None:
    refs = (RefImage(digest="d", mime="image/jpeg", data=_encoded("JPEG", (200, 40, 40))),)
    request = ImageRequest(model=MODEL, prompt=PROMPT, refs=refs, aspect_ratio="4:3")

    first = PreviewProvider().generate(request).image
    second = PreviewProvider().generate(request).image

    assert first == second


@pytest.mark.parametrize(
    ("model", "ratio", "size"),
    [
        (MODEL, None, None),
        (MODEL, "1:1", None),
        (MODEL, "16:9", None),
        (MODEL, "9:16", None),
        (MODEL, "21:9", None),
        (MODEL, "2:3", None),
        ("gemini-3.1-flash-image", "4:5", "0.5K"),
        ("gemini-3.1-flash-image", "3:2", "2K"),
        ("gemini-3-pro-image", "1:1", "1K"),
    ],
)
def test_pixel_size_matches_the_model(model: str, ratio: str | None, size: str | None) -> None:
    request = ImageRequest(model=model, prompt=PROMPT, aspect_ratio=ratio, image_size=size)
    image = _open(PreviewProvider().generate(request).image or b"")

    assert image.format == "PNG"
    assert image.size == pixel_size(ratio, size)


def test_model_without_image_sizes_ignores_image_size() -> None:
    request = ImageRequest(model=MODEL, prompt=PROMPT, aspect_ratio="1:1", image_size="2K")
    image = _open(PreviewProvider().generate(request).image or b"")

    assert image.size == (1024, 1024)


def test_banner_and_text_are_drawn_and_the_prompt_changes_the_image() -> None:
    provider = PreviewProvider()
    a = _open(provider.generate(ImageRequest(model=MODEL, prompt=PROMPT)).image or b"")
    b = _open(provider.generate(ImageRequest(model=MODEL, prompt=PROMPT + "!")).image or b"")

    colors = a.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 2  # not a blank canvas
    banner_strip = a.convert("RGB").crop((0, 0, a.width, 20)).getcolors()
    assert banner_strip is not None and len(banner_strip) == 1  # a dark band on top
    assert banner_strip[0][1] != background_for(PROMPT)
    banner = a.convert("RGB").crop((0, 0, a.width, 90)).getcolors(maxcolors=1 << 16) or []
    assert BANNER_INK in {color for _, color in banner}  # the banner's lettering
    assert a.getpixel((a.width - 2, a.height - 2)) == background_for(PROMPT)
    assert a.tobytes() != b.tobytes()


def test_background_is_a_soft_colour_derived_from_the_prompt() -> None:
    one, other = background_for("a red fox"), background_for("a blue whale")

    assert one == background_for("a red fox")
    assert one != other
    assert all(channel >= 180 for channel in one + other)  # pastel, text stays readable


def test_references_are_drawn_for_jpeg_webp_png_and_gs() -> None:
    refs = (
        RefImage(digest="j", mime="image/jpeg", data=_encoded("JPEG", (220, 20, 20))),
        RefImage(digest="w", mime="image/webp", data=_encoded("WEBP", (20, 20, 220))),
        RefImage(digest="p", mime="image/png", data=_encoded("PNG", (20, 160, 20), (50, 900))),
        RefImage(digest="g", mime="image/png", uri="gs://bucket/refs/mug.png"),
        RefImage(digest="x", mime="image/png", data=b"not an image"),
    )
    with_refs = ImageRequest(model=MODEL, prompt=PROMPT, refs=refs, aspect_ratio="16:9")
    without = ImageRequest(model=MODEL, prompt=PROMPT, aspect_ratio="16:9")

    result = PreviewProvider().generate(with_refs)
    image = _open(result.image or b"").convert("RGB")

    assert result.state is AttemptState.succeeded
    assert image.size == (1344, 768)
    assert image.tobytes() != _open(PreviewProvider().generate(without).image or b"").tobytes()
    pixels = {color for _, color in image.getcolors(maxcolors=1 << 20) or []}
    assert any(r > 180 and g < 90 and b < 90 for r, g, b in pixels)  # the JPEG thumbnail
    assert any(b > 180 and r < 90 and g < 90 for r, g, b in pixels)  # the WebP thumbnail


def test_a_very_long_prompt_still_fits() -> None:
    prompt = " ".join(["word"] * 5000) + " " + "x" * 100_000
    image = _open(PreviewProvider().generate(ImageRequest(model=MODEL, prompt=prompt)).image or b"")

    assert image.size == (1024, 1024)


def test_unicode_prompt_is_rendered_without_error() -> None:
    prompt = "Café crème \u2014 \u201cna\u00efve\u201d \u65e5\u672c \U0001f600"
    result = PreviewProvider().generate(ImageRequest(model=MODEL, prompt=prompt))

    assert result.state is AttemptState.succeeded
    assert printable("Café \u2014 ü") == "Cafe - u"


def test_get_provider_builds_preview_with_checked_results() -> None:
    provider = get_provider("preview", Settings())

    assert provider.name == "preview"
    assert isinstance(provider, Checked) and isinstance(provider.inner, PreviewProvider)
    result = provider.generate(ImageRequest(model=MODEL, prompt=PROMPT))
    assert result.state is AttemptState.succeeded
    assert (result.mime, result.cost_micros) == ("image/png", 0)
