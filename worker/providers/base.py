"""The provider protocol: one request in, one classified result out.

A provider never raises for what the model or its API answered (rate limits, server errors,
safety blocks, empty answers): it returns an :class:`ImageResult` whose ``state`` says what
happened. It raises only for bugs and for configuration that cannot work (``ConfigError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from models.statuses import AttemptState


@dataclass(frozen=True)
class RefImage:
    """A reference image ready to send: inline bytes, or a gs:// file URI passed through."""

    digest: str  # sha256 hex of the bytes (of the URI for gs://)
    mime: str  # image/png, image/jpeg or image/webp
    data: bytes | None = None
    uri: str | None = None


@dataclass(frozen=True)
class ImageRequest:
    """One image to generate."""

    model: str
    prompt: str
    refs: tuple[RefImage, ...] = ()
    aspect_ratio: str | None = None
    image_size: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ImageResult:
    """What one call produced; ``state`` classifies it (see AttemptState)."""

    state: AttemptState
    image: bytes | None = None
    mime: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    http_code: int | None = None
    error_status: str | None = None
    finish_reason: str | None = None
    message: str | None = None
    model_version: str | None = None
    response_id: str | None = None
    traffic_type: str | None = None
    preview: bool = False

    @property
    def reason(self) -> str | None:
        """One line for people: HTTP code and status, or finish/block reason, then the message."""
        head = []
        if self.http_code and self.http_code != 200:
            head.append(str(self.http_code))
        if self.error_status:
            head.append(self.error_status)
        if self.finish_reason and self.finish_reason != "STOP":
            head.append(self.finish_reason)
        text = " ".join(head)
        if self.message:
            text = f"{text}: {self.message}" if text else self.message
        return text or None


class Provider(Protocol):
    """Generates one image per call."""

    name: str

    def generate(self, request: ImageRequest) -> ImageResult: ...
