"""Checks per second on one core (issue 16): each automatic check on preview-sized images.

Prints figures, asserts nothing: ``python -m bench.checks [--quick]``. The throughput of a run
with checks on versus off (C = 16, 0.6 s) is not measured here yet.
"""

from __future__ import annotations

import argparse
import time

from worker.checks.image import blank_problem, distance, measure, size_problem
from worker.checks.text import read_text, text_problem
from worker.providers.base import ImageRequest
from worker.providers.preview import PreviewProvider


def _images(count: int) -> list[bytes]:
    provider = PreviewProvider()
    return [
        provider.generate(
            ImageRequest(
                model="gemini-2.5-flash-image",
                prompt=f"Employee badge for Person {n}, team {n % 7}",
                refs=(),
                aspect_ratio="3:4",
                image_size=None,
                labels={},
            )
        ).image
        or b""
        for n in range(count)
    ]


def _rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<34} {count / seconds:8.1f} images/s on one core ({count} in {seconds:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    images = _images(8 if args.quick else 40)
    started = time.perf_counter()
    measures = [measure(data) for data in images]
    _rate("decode + size + blank + hash", len(images), time.perf_counter() - started)
    started = time.perf_counter()
    for m in measures:
        size_problem(m, "3:4", None)
        blank_problem(m)
        for other in measures:
            distance(m.dhash, other.dhash)
    _rate("judging (duplicates: all pairs)", len(images), time.perf_counter() - started)
    ocr = images[: 4 if args.quick else 10]
    started = time.perf_counter()
    for n, data in enumerate(ocr):
        text_problem(f"Person {n}", read_text(data), 0.1)
    _rate("expected text (Tesseract OCR)", len(ocr), time.perf_counter() - started)


if __name__ == "__main__":
    main()
