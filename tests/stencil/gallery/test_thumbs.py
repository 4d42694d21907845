"""Thumbnails: small JPEGs named by source digest, kept when they exist, pruned when unused."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from stencil.gallery.thumbs import (
    THUMB_PX,
    digest_name,
    make_thumbnail,
    make_thumbnails,
    prune,
    thumbnail_for,
)
from stencil.storage.local import LocalStorage
from tests.stencil.gallery.seed import png


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_thumbnail_is_a_small_jpeg_with_the_source_shape() -> None:
    data, size = make_thumbnail(png((10, 200, 30), (896, 1152)))

    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == size
    assert max(size) == THUMB_PX and abs(size[0] / size[1] - 896 / 1152) < 0.01


def test_large_jpeg_source_is_shrunk() -> None:
    data, size = make_thumbnail(_jpeg((200, 10, 10), (2048, 1536)))

    assert size == (THUMB_PX, 240)
    with Image.open(io.BytesIO(data)) as thumb:
        red, green, _ = thumb.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
        assert red > 150 and green < 60


def test_transparent_source_is_flattened_on_white() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(buffer, "PNG")

    data, _ = make_thumbnail(buffer.getvalue())

    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.mode == "RGB"
        assert min(thumb.getpixel((5, 5))) > 240  # type: ignore[arg-type]


def test_existing_thumbnail_with_same_digest_is_kept(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "out")
    source = png((1, 2, 3))
    store.put("a.png", source, "image/png")
    folder = tmp_path / "thumbs"
    folder.mkdir()

    first = thumbnail_for("i_1", "a.png", storage=store, folder=folder)
    stamp = (folder / digest_name(source)).stat().st_mtime_ns
    second = thumbnail_for("i_1", "a.png", storage=store, folder=folder)

    assert first.made and not second.made
    assert first.name == second.name == digest_name(source)
    assert (second.width, second.height) == (first.width, first.height) == (64, 80)
    assert (folder / digest_name(source)).stat().st_mtime_ns == stamp


def test_changed_source_gets_a_new_thumbnail(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "out")
    store.put("a.png", png((1, 2, 3)), "image/png")
    first = thumbnail_for("i_1", "a.png", storage=store, folder=tmp_path)
    store.put("a.png", png((200, 2, 3)), "image/png")

    second = thumbnail_for("i_1", "a.png", storage=store, folder=tmp_path)

    assert second.made and second.name != first.name


def test_missing_and_unreadable_images_give_reasons(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "out")
    store.put("bad.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")

    missing, bad = make_thumbnails(
        [("i_1", "gone.png"), ("i_2", "bad.png")], storage=store, folder=tmp_path / "t"
    )

    assert missing.name is None and missing.problem == "image missing from storage"
    assert bad.name is None and bad.problem is not None and "unreadable" in bad.problem
    assert list((tmp_path / "t").iterdir()) == []


def test_make_thumbnails_keeps_input_order(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "out")
    pairs = []
    for n in range(40):
        store.put(f"{n}.png", png((n, n, n)), "image/png")
        pairs.append((f"i_{n}", f"{n}.png"))

    thumbs = list(make_thumbnails(pairs, storage=store, folder=tmp_path / "t"))

    assert [t.item_id for t in thumbs] == [p[0] for p in pairs]
    assert len({t.name for t in thumbs}) == 40


def test_prune_removes_only_unused_thumbnails(tmp_path: Path) -> None:
    keep, old = digest_name(b"keep"), digest_name(b"old")
    for name in (keep, old, "notes.txt", "ABC.jpg"):
        (tmp_path / name).write_bytes(b"x")

    removed = prune(tmp_path, {keep})

    assert removed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([keep, "notes.txt", "ABC.jpg"])
