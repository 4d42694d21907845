"""The emulator's knobs: latency, capacity, fault rates and auth, changeable at runtime."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

# Odd answers the knob ``hostile`` asks for (see stencil/emulator/hostile.py).
HOSTILE_MODES: dict[str, str] = {
    "long_fields": "200s carry a model version, response id, image mime type, finish reason and "
    "traffic type, error answers a status and message, of long_field_chars characters each, "
    "echoing the caller's credential",
    "long_error": "answer 503 with a long status and message echoing the credential (unbilled)",
    "svg_image": "the image part is an SVG with a script, labelled image/png",
    "negative_tokens": "usageMetadata counts are negative (the bill stays what was generated)",
    "huge_tokens": "usageMetadata counts are absurdly large (the bill stays what was generated)",
    "unparseable": "a 200 whose body is cut in half (billed like the image it was)",
}


@dataclass
class Knobs:
    """How the emulated endpoint behaves; every field can be changed while it runs."""

    latency_mean_s: float = 0.0  # mean service time of a generateContent call
    latency_jitter: float = 0.0  # sigma of a mean-preserving lognormal around the mean
    capacity: int | None = None  # max concurrent calls; beyond it 429 at once
    rpm: float | None = None  # calls admitted per sliding minute; beyond it 429
    error_500_rate: float = 0.0  # share of admitted calls answered 500 INTERNAL
    error_503_rate: float = 0.0  # share answered 503 UNAVAILABLE
    timeout_rate: float = 0.0  # share that hang for hang_s (longer than the client waits)
    drop_rate: float = 0.0  # share whose socket is closed without an answer
    hang_s: float = 30.0  # how long a "timeout" call hangs
    require_token: str | None = None  # demand this bearer token or API key (else 401)
    forbidden_tokens: list[str] = field(default_factory=list)  # these get 403
    retired_models: list[str] = field(default_factory=list)  # these answer 404
    tiny_images: bool = False  # 8x8 PNGs, for overhead benchmarks
    # text drawn on every image ("{prompt}": the call's prompt; [[MISSPELL]] in a prompt
    # misspells it), for OCR checks; None: plain-colour images (see stencil/emulator/drawn.py)
    image_text: str | None = None
    hostile: list[str] = field(default_factory=list)  # odd answers to give (HOSTILE_MODES)
    hostile_match: str | None = None  # only prompts containing this get them; None: every call
    long_field_chars: int = 10_000  # length of the fields that "long_fields" makes
    seed: int | None = None  # seeds the fault and latency draws
    sample_interval_s: float = 0.25  # spacing of timeline samples

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """The knobs as JSON-ready data, with tokens shown only as set or not."""
        data = dataclasses.asdict(self)
        data["require_token"] = None if self.require_token is None else "<set>"
        data["forbidden_tokens"] = ["<set>"] * len(self.forbidden_tokens)
        return data


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Check one knob value against the type of its default (None allowed for optional ones)."""
    optional = ("capacity", "rpm", "require_token", "seed", "hostile_match", "image_text")
    if name in optional and value is None:
        return None
    if name in ("forbidden_tokens", "retired_models", "hostile"):
        return _coerce_list(name, value)
    if name == "tiny_images":
        if not isinstance(value, bool):
            raise ValueError(f"knob {name!r} takes true or false")
        return value
    if name == "image_text" and not (isinstance(value, str) and 0 < len(value) <= 400):
        raise ValueError(f"knob {name!r} takes a string of 1 to 400 characters")
    if name in ("require_token", "hostile_match", "image_text"):
        if not isinstance(value, str):
            raise ValueError(f"knob {name!r} takes a string")
        return value
    if name in ("capacity", "seed", "long_field_chars"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"knob {name!r} takes an integer")
        if name == "long_field_chars" and not 1 <= value <= 10_000_000:
            raise ValueError(f"knob {name!r} is out of range: {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"knob {name!r} takes a number")
    number = float(value)
    if number < 0 or (name.endswith("_rate") and number > 1):
        raise ValueError(f"knob {name!r} is out of range: {value!r}")
    return number


def _coerce_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"knob {name!r} takes a list of strings")
    if name == "hostile" and not all(v in HOSTILE_MODES for v in value):
        raise ValueError(f"knob {name!r} takes a list of: {', '.join(HOSTILE_MODES)}")
    return list(value)


class KnobBox:
    """The live knobs, replaced whole under a lock so a request sees one consistent set."""

    def __init__(self, knobs: Knobs) -> None:
        self._lock = threading.Lock()
        self._knobs = knobs

    def get(self) -> Knobs:
        with self._lock:
            return self._knobs

    def update(self, changes: dict[str, Any]) -> Knobs:
        """Apply changes; unknown names or bad values raise ValueError and change nothing."""
        unknown = sorted(set(changes) - set(Knobs.names()))
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(unknown)}")
        with self._lock:
            current = self._knobs
            values = {k: _coerce(k, v, getattr(current, k)) for k, v in changes.items()}
            self._knobs = dataclasses.replace(current, **values)
            return self._knobs


def make_knobs(**changes: Any) -> Knobs:
    """Knobs from keyword arguments, checked like runtime changes."""
    return KnobBox(Knobs()).update(changes)
