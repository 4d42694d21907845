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
    assert next_output_key(key, "i_x") == expected
