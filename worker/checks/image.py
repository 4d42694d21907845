"""Image measurements for the checks: pure functions of the bytes, bounded in time and memory.

Every image is decoded once and shrunk before any arithmetic: the blank test looks at a 64x64
greyscale copy, the perceptual hash (a difference hash, 64 bits) at a 9x8 one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageStat

from stencil.catalog import pixel_size

MAX_PIXELS = 64_000_000  # larger than any model's 4K answer; more is refused, not decoded
ASPECT_TOLERANCE = 0.02  # relative difference of width/height from the requested ratio
SIZE_TOLERANCE = 0.25  # relative difference of the long side from the requested size's
BLANK_STDDEV = 4.0  # default: a greyscale standard deviation below this is a blank image
DUPLICATE_DISTANCE = 4  # default: hashes this close (of 64 bits) are near-duplicates


@dataclass(frozen=True)
class Measure:
    """What the checks need from one image."""

    width: int
    height: int
    stddev: float  # of the 64x64 greyscale copy, 0..127.5
    dhash: int  # 64-bit difference hash
    text: str | None = None  # what OCR read (worker/checks/text), when a text is expected
    text_error: str | None = None  # why OCR could not read it


class Unreadable(ValueError):
    """The stored bytes are not an image Pillow can decode within the bounds."""


def measure(data: bytes) -> Measure:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Unreadable(f"the image is {width}x{height} pixels; at most {MAX_PIXELS:,}")
            image.draft("L", (256, 256))  # JPEG: decode at a reduced scale
            grey = image.convert("L")
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise Unreadable(f"the image cannot be read: {exc}") from exc
    small = grey.resize((64, 64), Image.Resampling.BILINEAR)
    stddev = float(ImageStat.Stat(small).stddev[0])
    tiny = grey.resize((9, 8), Image.Resampling.BILINEAR)
    pixels = tiny.tobytes()  # 72 greyscale bytes, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            bits = (bits << 1) | (left > right)
    return Measure(width=width, height=height, stddev=stddev, dhash=bits)


def size_problem(m: Measure, aspect_ratio: str | None, image_size: str | None) -> str | None:
    """Why the image's shape is not the one requested, or None."""
    want_w, want_h = pixel_size(aspect_ratio, image_size)
    ratio, want = m.width / m.height, want_w / want_h
    if abs(ratio - want) / want > ASPECT_TOLERANCE:
        return (
            f"aspect ratio {m.width}x{m.height} is not the requested "
            f"{aspect_ratio or '1:1'} ({want_w}x{want_h})"
        )
    long_side, want_long = max(m.width, m.height), max(want_w, want_h)
    if abs(long_side - want_long) / want_long > SIZE_TOLERANCE:
        return (
            f"size {m.width}x{m.height} is not the requested {image_size or '1K'} "
            f"({want_w}x{want_h})"
        )
    return None


def blank_problem(m: Measure, threshold: float = BLANK_STDDEV) -> str | None:
    """Why the image looks blank (near-uniform), or None."""
    if m.stddev < threshold:
        return f"the image is blank (near-uniform: contrast {m.stddev:.1f} < {threshold:g})"
    return None


def distance(a: int, b: int) -> int:
    """Bits that differ between two hashes."""
    return (a ^ b).bit_count()
