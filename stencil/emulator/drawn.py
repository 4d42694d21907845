"""Images that carry readable text, for the knob ``image_text`` (OCR checks need real text).

The text is ``image_text`` with ``{prompt}`` replaced by the call's prompt (its ``[[MARKERS]]``
removed). A prompt carrying ``[[MISSPELL]]`` gets the text misspelt on purpose: in every word of
four letters or more the second and third letters swap places (``Lovelace`` -> ``Lvoelace``), as
a model that garbled the lettering would. Black words on a white band over the prompt's colour;
the same call always gives the same bytes.
"""

from __future__ import annotations

import base64
import functools
import io
import re

from PIL import Image, ImageDraw, ImageFont

MISSPELL = "[[MISSPELL]]"
MAX_TEXT_CHARS = 400  # what a canvas shows; bounds the drawing work
_MARKER = re.compile(r"\[\[[A-Z_]+\]\]")
_LONG_WORD = re.compile(r"\b(\w)(\w)(\w)(\w+)")
INK = (0, 0, 0)
BAND = (255, 255, 255)


def text_for(template: str, prompt: str) -> str:
    """The text the image shows for this prompt."""
    shown = " ".join(template.replace("{prompt}", _MARKER.sub(" ", prompt)).split())
    if MISSPELL in prompt:
        shown = _LONG_WORD.sub(lambda m: m[1] + m[3] + m[2] + m[4], shown)
    return shown[:MAX_TEXT_CHARS]


@functools.lru_cache(maxsize=64)
def text_png(width: int, height: int, background: tuple[int, int, int], text: str) -> str:
    """A base64 PNG of ``text`` on a white band across an image of ``background``."""
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    size = max(12, min(width, height) // 16)
    font = ImageFont.load_default(size=size)
    margin = size
    lines = _wrap(text, font, width - 2 * margin)
    step = round(size * 1.4)
    top = max(0, (height - step * len(lines)) // 2)
    draw.rectangle((0, top - margin, width, top + step * len(lines) + margin), fill=BAND)
    for n, line in enumerate(lines):
        draw.text((margin, top + n * step), line, font=font, fill=INK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


def _wrap(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float
) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= max_width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]
