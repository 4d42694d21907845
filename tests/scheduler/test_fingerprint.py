"""Item fingerprints: stable, and different whenever an image-shaping input changes."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.fingerprint import item_fingerprint

BASE: dict[str, Any] = {
    "provider": "vertex",
    "model": "gemini-2.5-flash-image",
    "prompt": "a red shirt",
    "ref_digests": ["aa", "bb"],
    "aspect_ratio": "4:5",
    "image_size": None,
    "variant": 1,
}


def test_stable() -> None:
    first = item_fingerprint(**BASE)
    assert first == item_fingerprint(**dict(BASE, ref_digests=("aa", "bb")))
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provider", "preview"),
        ("model", "gemini-3-pro-image"),
        ("prompt", "a red shirt "),
        ("ref_digests", ["bb", "aa"]),
        ("ref_digests", ["aa"]),
        ("aspect_ratio", None),
        ("aspect_ratio", "1:1"),
        ("image_size", "1K"),
        ("variant", 2),
    ],
)
def test_changes_with_each_input(field: str, value: Any) -> None:
    assert item_fingerprint(**dict(BASE, **{field: value})) != item_fingerprint(**BASE)
