"""The compatibility routers' input rules, without a server: what is read from a body, what is
ignored, Prefer: wait, and the model table from STENCIL_COMPAT_MODELS."""

from __future__ import annotations

import pytest

from api.compat.models_map import stencil_model
from api.compat.replicate import _wait_s
from api.compat.single import read_inputs
from api.problems import ApiProblem
from stencil.settings import Settings


def test_inputs_are_read_and_unknown_fields_ignored() -> None:
    got = read_inputs(
        {"prompt": "p", "image_input": "https://x/a.png", "aspect_ratio": "match_input_image",
         "output_format": "jpg", "num_images": 3, "seed": 1}
    )  # fmt: skip
    assert got.images == ["https://x/a.png"] and got.images_field == "image_input"
    assert got.aspect_ratio is None and got.num_images == 3 and got.prompt == "p"


@pytest.mark.parametrize(
    ("body", "fld"),
    [
        ({}, "prompt"),
        ({"prompt": "  "}, "prompt"),
        ({"prompt": "p", "num_images": 0}, "num_images"),
        ({"prompt": "p", "num_images": True}, "num_images"),
        ({"prompt": "p", "image_urls": [1]}, "image_urls"),
        ({"prompt": "p", "aspect_ratio": 3}, "aspect_ratio"),
    ],
)
def test_bad_inputs_name_their_field(body: dict[str, object], fld: str) -> None:
    with pytest.raises(ApiProblem) as bad:
        read_inputs(body)
    assert bad.value.status == 422 and bad.value.problems
    assert bad.value.problems[0]["field"] == fld


def test_prefer_wait() -> None:
    assert _wait_s(None) == 0 and _wait_s("respond-async") == 0
    assert _wait_s("wait") == 60 and _wait_s("wait=5") == 5 and _wait_s("wait=600") == 60


def test_model_table_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stencil_model("fal-ai/nano-banana/edit", Settings()) == "gemini-2.5-flash-image"
    monkeypatch.setenv("STENCIL_COMPAT_MODELS", '{"acme/pic": "gemini-3-pro-image"}')
    settings = Settings()
    assert stencil_model("acme/pic", settings) == "gemini-3-pro-image"
    with pytest.raises(ApiProblem) as missing:
        stencil_model("fal-ai/nano-banana", settings)
    assert missing.value.status == 404
