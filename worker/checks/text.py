"""The expected-text check: read the image's text by OCR (Tesseract through pytesseract) and
look for the expected text in it, allowing a number of edits the user sets as a fraction.

Both texts are compared case-folded, with punctuation dropped and whitespace collapsed; the
expected text may be anywhere in what was read (a badge also shows a company name, say).

Tesseract runs niced (:data:`OCR_NICE`) and on one thread (``OMP_THREAD_LIMIT=1`` unless set:
half the CPU per image of its default threading), so checks take spare CPU, not the calls'.
"""

from __future__ import annotations

import io
import os
import re

from PIL import Image

OCR_TIMEOUT_S = 30
OCR_NICE = 10  # below the scheduler's and workers' own work
MAX_READ_CHARS = 2000  # what is compared and quoted; OCR of an image rarely reads more
MAX_EXPECTED_CHARS = 200
DEFAULT_TOLERANCE = 0.1  # edits allowed, as a fraction of the expected text's length
SHOWN_CHARS = 120
_NOT_WORD = re.compile(r"[^\w]+")


class OcrUnavailable(RuntimeError):
    """Tesseract is not installed or did not answer in time: tried again later."""


def read_text(data: bytes) -> str:
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # pytesseract passes this process's env
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = pytesseract.image_to_string(
                image.convert("L"), timeout=OCR_TIMEOUT_S, nice=OCR_NICE
            )
    except (pytesseract.TesseractNotFoundError, RuntimeError) as exc:
        raise OcrUnavailable(f"OCR is unavailable: {exc}") from exc
    return str(text)[:MAX_READ_CHARS]


def normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def edits_to_find(needle: str, haystack: str) -> int:
    """The fewest edits turning ``needle`` into some substring of ``haystack`` (Sellers)."""
    previous = [0] * (len(haystack) + 1)
    for i, char in enumerate(needle, start=1):
        current = [i] + [0] * len(haystack)
        for j, other in enumerate(haystack, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
        previous = current
    return min(previous)


def text_problem(expected: str, read: str, tolerance: float) -> str | None:
    """Why the read text does not contain the expected one, or None."""
    want, got = normalise(expected)[:MAX_EXPECTED_CHARS], normalise(read)
    if not want:
        return None
    allowed = int(tolerance * len(want))
    edits = edits_to_find(want, got)
    if edits <= allowed:
        return None
    shown = " ".join(read.split())[:SHOWN_CHARS] or "(no text)"
    return (
        f"expected text {expected!r} not found; read {shown!r} "
        f"({edits} edits from it, at most {allowed} allowed)"
    )
