"""Helpers to write small manifests into a temporary folder and load them."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scheduler.manifest import Plan, SubmitOptions, load_plan
from stencil.errors import ManifestError, Problem
from stencil.settings import Settings


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 120, 20)).save(out, "JPEG")
    return out.getvalue()


class Folder:
    """A manifest folder under tmp_path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def image(self, name: str, data: bytes | None = None) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes() if data is None else data)
        return path

    def load(self, name: str, **kwargs: Any) -> Plan:
        options = kwargs.pop("options", SubmitOptions())
        settings = kwargs.pop("settings", Settings(_env_file=None))
        return load_plan(
            self.root / name, options=options, settings=settings, batch_id="b_test", **kwargs
        )

    def problems(self, name: str, **kwargs: Any) -> list[Problem]:
        with pytest.raises(ManifestError) as caught:
            self.load(name, **kwargs)
        return caught.value.problems


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folder:
    for var in ("STENCIL_MODEL", "STENCIL_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "m"
    root.mkdir()
    return Folder(root)


def only(problems: list[Problem], predicate: Callable[[Problem], bool]) -> Problem:
    found = [p for p in problems if predicate(p)]
    assert len(found) == 1, problems
    return found[0]
