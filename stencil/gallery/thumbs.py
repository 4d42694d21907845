"""Thumbnails: small JPEG previews of output images, named by the digest of their source.

A thumbnail's file name is the first 20 hex digits of the SHA-256 of the image it shows, so a
thumbnail that already exists for the same bytes is kept instead of being made again, and the
same image reused by several items is shrunk once. Shrinking uses Pillow's draft mode (JPEG
sources decode at a reduced scale) and ``reducing_gap`` (a fast integer reduce before the
bicubic resample, every format).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from stencil.errors import ObjectMissing, StorageError
from stencil.storage.base import Storage

THUMB_PX = 320
JPEG_QUALITY = 72
REDUCING_GAP = 1.5  # integer box reduce first to 1.5x the target, then bicubic: ~3x faster
DIGEST_CHARS = 20
NAME = re.compile(rf"^[0-9a-f]{{{DIGEST_CHARS}}}\.jpg$")
WORKERS = min(16, (os.cpu_count() or 2) * 2)


@dataclass(frozen=True)
class Thumb:
    """The thumbnail of one item's image, or the reason there is none."""

    item_id: str
    name: str | None = None  # file name inside the thumbnails folder
    width: int = 0
    height: int = 0
    made: bool = False  # False when an existing thumbnail was kept
    problem: str | None = None  # why no thumbnail (missing or unreadable image)


def digest_name(data: bytes) -> str:
    """The thumbnail file name for these source bytes."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS] + ".jpg"


def make_thumbnail(data: bytes, *, max_px: int = THUMB_PX) -> tuple[bytes, tuple[int, int]]:
    """A JPEG no larger than ``max_px`` on its longer side, and its pixel size."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((max_px, max_px), Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            out_image = flat
        else:
            out_image = image.convert("RGB")
        buffer = io.BytesIO()
        out_image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=True)
        return buffer.getvalue(), out_image.size


def thumbnail_for(item_id: str, key: str, *, storage: Storage, folder: Path) -> Thumb:
    """Read one output image and make its thumbnail in ``folder`` unless it exists already."""
    try:
        data = storage.get(key)
    except ObjectMissing:
        return Thumb(item_id, problem="image missing from storage")
    except StorageError as exc:
        return Thumb(item_id, problem=f"cannot read the image: {exc}")
    name = digest_name(data)
    path = folder / name
    if path.is_file():
        try:
            with Image.open(path) as existing:
                width, height = existing.size
            return Thumb(item_id, name, width, height, made=False)
        except (OSError, UnidentifiedImageError):
            path.unlink(missing_ok=True)  # a damaged thumbnail: make it again
    try:
        jpeg, (width, height) = make_thumbnail(data)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        return Thumb(item_id, problem=f"unreadable image: {type(exc).__name__}")
    _write_atomic(path, jpeg)
    return Thumb(item_id, name, width, height, made=True)


def make_thumbnails(
    sources: Iterable[tuple[str, str]], *, storage: Storage, folder: Path
) -> Iterator[Thumb]:
    """Thumbnails for ``(item_id, output_key)`` pairs, made on a thread pool, in input order."""
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="thumbs") as pool:
        yield from pool.map(
            lambda pair: thumbnail_for(pair[0], pair[1], storage=storage, folder=folder), sources
        )


def prune(folder: Path, keep: set[str]) -> int:
    """Delete thumbnails in ``folder`` that no item shows any more; other files are left alone."""
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        if NAME.match(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
