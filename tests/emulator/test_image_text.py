"""The knob ``image_text``: emulator images that carry readable text, for the OCR check."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from stencil.emulator import EmulatorHandle
from stencil.emulator.drawn import text_for
from stencil.emulator.knobs import make_knobs
from tests.emulator.test_server import post, text_body
from worker.checks.text import read_text, text_problem


def image_bytes(answer: dict[str, Any]) -> bytes:
    return base64.b64decode(answer["candidates"][0]["content"]["parts"][0]["inlineData"]["data"])


def test_the_text_comes_from_the_prompt_and_a_marker_misspells_it() -> None:
    assert text_for("{prompt}", "Badge for Ana Lima [[MISSPELL]]") == "Bdage for Ana Lmia"
    assert text_for("{prompt}", "Badge for Ana Lima") == "Badge for Ana Lima"
    assert text_for("Name: {prompt}", "Bo [[SAFETY]] Chen") == "Name: Bo Chen"
    assert text_for("Bruno Silva", "Badge for Ana Lima") == "Bruno Silva"


def test_bad_values_are_refused() -> None:
    for bad in ("", 3, "x" * 401):
        with pytest.raises(ValueError, match="image_text"):
            make_knobs(image_text=bad)
    assert make_knobs(image_text=None).image_text is None


def test_ocr_reads_the_drawn_text_and_a_misspelt_one_fails_the_check(
    emu: EmulatorHandle,
) -> None:
    plain = post(emu, text_body("Badge for Ana Lima", aspectRatio="3:4"))[1]
    one_image = emu.stats()["output_tokens"]
    emu.configure(image_text="{prompt}")
    code, good = post(emu, text_body("Badge for Ana Lima", aspectRatio="3:4"))
    assert code == 200 and image_bytes(good) != image_bytes(plain)
    assert text_problem("Ana Lima", read_text(image_bytes(good)), 0.1) is None
    bad = post(emu, text_body("Badge for Ana Lima [[MISSPELL]]", aspectRatio="3:4"))[1]
    problem = text_problem("Ana Lima", read_text(image_bytes(bad)), 0.1) or ""
    assert "expected text 'Ana Lima' not found; read 'Bdage for Ana Lmia'" in problem
    again = post(emu, text_body("Badge for Ana Lima", aspectRatio="3:4"))[1]
    assert image_bytes(again) == image_bytes(good)  # the same call, the same bytes
    stats = emu.stats()  # text costs nothing more: each image billed like a plain one
    assert stats["outcomes"] == {"ok": 4} and stats["output_tokens"] == 4 * one_image
