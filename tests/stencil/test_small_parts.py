from __future__ import annotations

import io

from stencil.catalog import cost_micros, estimate_micros, pixel_size, spec_for
from stencil.cli.output import csv_safe, write_csv
from stencil.ids import IdKind, kind_of, new_id


def test_ids_are_prefixed_and_unguessable() -> None:
    ids = {new_id(IdKind.item) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("i_") and len(i) == 28 for i in ids)
    assert kind_of(new_id(IdKind.batch)) is IdKind.batch
    assert kind_of("x_123") is None and kind_of("nonsense") is None


def test_cost_from_usage_metadata() -> None:
    # gemini-2.5-flash-image: $0.30/M input, $30/M output, 1290 tokens per image = $0.0387
    assert cost_micros("gemini-2.5-flash-image", prompt_tokens=0, output_tokens=1290) == 38_700
    assert cost_micros("gemini-2.5-flash-image", prompt_tokens=9, output_tokens=1290) == 38_703
    assert cost_micros("gemini-3-pro-image", prompt_tokens=0, output_tokens=2000) == 240_000
    batch = cost_micros(
        "gemini-2.5-flash-image", prompt_tokens=0, output_tokens=1290, batch_mode=True
    )
    assert batch == 19_350


def test_estimate_covers_the_image_and_the_prompt() -> None:
    estimate = estimate_micros(
        "gemini-3.1-flash-image", prompt="x" * 400, ref_count=1, image_size="2K"
    )
    assert estimate > cost_micros("gemini-3.1-flash-image", prompt_tokens=0, output_tokens=1684)


def test_unknown_models_borrow_their_family() -> None:
    assert spec_for("gemini-3.5-pro-image").output_usd_per_m == 120.0
    assert spec_for("gemini-9-flash-image").image_sizes
    assert pixel_size("16:9") == (1344, 768) and pixel_size("1:1", "2K") == (2048, 2048)


def test_csv_cells_cannot_become_formulas() -> None:
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("+1") == "'+1" and csv_safe("@x") == "'@x" and csv_safe("-2") == "'-2"
    assert csv_safe("plain") == "plain" and csv_safe(3.5) == 3.5
    out = io.StringIO()
    write_csv([{"key": "=cmd|' /C calc'!A0", "cost": 1}], out)
    assert out.getvalue().splitlines()[1].startswith("'=cmd")
