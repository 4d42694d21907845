"""What Stencil knows of each image model: prices, pixel sizes and request limits, as data.

Prices are list prices in USD (Gemini API, late 2026). The cost of an attempt is computed from the
response's ``usageMetadata`` with :func:`cost_micros`; the pre-submit estimate from
:func:`estimate_micros`. Submit accepts only the model ids in :data:`MODELS` (a mistyped id
would otherwise fail every paid attempt at run time); :func:`spec_for` still prices an unknown id
like its nearest family member for records made before that check.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

RATIO_PIXELS_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SIZE_SCALE = {"0.5K": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}
TEXT_TOKENS_PER_CHAR = 0.25
TOKENS_PER_REF_IMAGE = 258 * 4  # up to four 768x768 tiles per reference image
CHARS_PER_TOKEN = 4  # English text; a prompt limit in characters is its token limit times this


@dataclass(frozen=True)
class ModelSpec:
    """Prices and limits of one image model."""

    name: str
    input_usd_per_m: float
    output_usd_per_m: float
    tokens_per_image: dict[str, int]  # by image size; "1K" is the default
    image_sizes: tuple[str, ...] = ()  # empty: the model takes no imageSize
    aspect_ratios: tuple[str, ...] = tuple(RATIO_PIXELS_1K)
    max_ref_images: int = 3
    max_ref_bytes: int = 7 * 1024 * 1024
    max_prompt_chars: int = 32_768 * CHARS_PER_TOKEN  # the model's input token limit, as text
    batch_discount: float = 0.5
    retired: bool = False
    notes: tuple[str, ...] = field(default=())

    def output_tokens(self, image_size: str | None) -> int:
        return self.tokens_per_image.get(image_size or "1K", self.tokens_per_image["1K"])


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="gemini-2.5-flash-image",
            input_usd_per_m=0.30,
            output_usd_per_m=30.0,
            tokens_per_image={"1K": 1290},
            max_prompt_chars=32_768 * CHARS_PER_TOKEN,
            notes=("Google announced its retirement for 2026-10-02",),
        ),
        ModelSpec(
            name="gemini-3.1-flash-image",
            input_usd_per_m=0.50,
            output_usd_per_m=60.0,
            tokens_per_image={"0.5K": 750, "1K": 1117, "2K": 1684, "4K": 2517},
            image_sizes=("0.5K", "1K", "2K", "4K"),
            max_ref_images=14,
            max_prompt_chars=131_072 * CHARS_PER_TOKEN,
        ),
        ModelSpec(
            name="gemini-3-pro-image",
            input_usd_per_m=2.00,
            output_usd_per_m=120.0,
            tokens_per_image={"1K": 1117, "2K": 1117, "4K": 2000},
            image_sizes=("1K", "2K", "4K"),
            max_ref_images=14,
            max_prompt_chars=65_536 * CHARS_PER_TOKEN,
        ),
    )
}
DEFAULT_MODEL = "gemini-2.5-flash-image"


def spec_for(model: str) -> ModelSpec:
    """The spec of a model; unknown ids borrow the nearest family's prices and limits."""
    if model in MODELS:
        return MODELS[model]
    version = re.match(r"gemini-(\d+)", model)
    modern = version is not None and int(version.group(1)) >= 3
    if "pro" in model:
        base = MODELS["gemini-3-pro-image"]
    elif modern:
        base = MODELS["gemini-3.1-flash-image"]
    else:
        base = MODELS[DEFAULT_MODEL]
    return ModelSpec(**{**base.__dict__, "name": model, "notes": ()})


def is_known(model: str) -> bool:
    return model in MODELS


def pixel_size(aspect_ratio: str | None, image_size: str | None = None) -> tuple[int, int]:
    """The pixel size an image model returns for a ratio and size (1K sizes by default)."""
    width, height = RATIO_PIXELS_1K.get(aspect_ratio or "1:1", RATIO_PIXELS_1K["1:1"])
    scale = SIZE_SCALE.get(image_size or "1K", 1.0)
    return round(width * scale), round(height * scale)


def usd_to_micros(usd: float) -> int:
    return round(usd * 1_000_000)


def micros_to_usd(micros: int) -> float:
    return round(micros / 1_000_000, 6)


def cost_micros(
    model: str, *, prompt_tokens: int, output_tokens: int, batch_mode: bool = False
) -> int:
    """The cost of one response from its usageMetadata token counts, in micro-dollars.

    Rounded up to the whole micro-dollar so a ledger never shows less than was billed.
    """
    spec = spec_for(model)
    usd = prompt_tokens * spec.input_usd_per_m / 1e6 + output_tokens * spec.output_usd_per_m / 1e6
    if batch_mode:
        usd *= spec.batch_discount
    return math.ceil(round(usd * 1_000_000, 6))


def estimate_micros(
    model: str, *, prompt: str, ref_count: int, image_size: str | None = None
) -> int:
    """A pre-submit estimate of one item's cost: output tokens from the table, input guessed."""
    spec = spec_for(model)
    prompt_tokens = math.ceil(len(prompt) * TEXT_TOKENS_PER_CHAR) + ref_count * TOKENS_PER_REF_IMAGE
    return cost_micros(
        model, prompt_tokens=prompt_tokens, output_tokens=spec.output_tokens(image_size)
    )
