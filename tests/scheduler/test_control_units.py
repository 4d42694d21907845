from __future__ import annotations

import pytest

from scheduler.control import next_output_key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cat/A-100/1.png", "cat/A-100/1.r2.png"),
        ("cat/A-100/1.r2.png", "cat/A-100/1.r3.png"),
        ("cat/A-100/1.r9.png", "cat/A-100/1.r10.png"),
        ("noext", "noext.r2"),
        ("dir.v1/file", "dir.v1/file.r2"),
    ],
)
def test_next_output_key_keeps_the_old_image(key: str, expected: str) -> None:
    assert next_output_key(key) == expected


def test_a_reused_item_gets_a_key_of_its_own() -> None:
    from scheduler.control import _own_key

    assert _own_key("b_1/A/1.png", "i_abc") == "b_1/A/1.i_abc.png"
