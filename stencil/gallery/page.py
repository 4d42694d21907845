"""The contact sheet page: one self-contained HTML file (CSS, script and data inline).

The header is rendered by Jinja2 (sandboxed, autoescaped). Items travel as one JSON block that
the page's script turns into cards a chunk at a time, so 5,000 items stay quick. The JSON is
escaped for a ``<script>`` element: ``<``, ``>`` and ``&`` become ``\\u003c``-style escapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

PACKAGE = "stencil.gallery"
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


@dataclass(frozen=True)
class Card:
    """One item as the page shows it."""

    request_id: str
    key: str
    variant: int
    status: str
    cost_usd: float
    prompt: str
    version: str  # the output key: a mark applies to this image only
    thumb_url: str | None = None
    thumb_size: tuple[int, int] = (0, 0)
    image_url: str | None = None
    reason: str | None = None
    review: str | None = None
    review_note: str | None = None
    qa: str | None = None  # automatic checks: pending | passed | failed
    qa_note: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.request_id,
            "k": self.key,
            "v": self.variant,
            "s": self.status,
            "c": self.cost_usd,
            "p": self.prompt,
            "o": self.version,
        }
        if self.thumb_url:
            body.update(t=self.thumb_url, w=self.thumb_size[0], h=self.thumb_size[1])
        if self.image_url:
            body["u"] = self.image_url
        if self.reason:
            body["r"] = self.reason
        if self.review:
            body.update(m=self.review, n=self.review_note or "")
        if self.qa:
            body.update(q=self.qa, qn=self.qa_note or "")
        return body


def script_json(data: Any) -> str:
    """JSON safe to place inside a ``<script type="application/json">`` element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def render_page(*, batch: dict[str, Any], cards: list[Card], generated_at: str) -> str:
    """The whole page for one batch (``batch`` is the poll view of the batch)."""
    header = dict(batch)
    header["counts"] = sorted(batch["counts"].items())
    for field in ("created_at", "finished_at"):
        header[field] = _when(batch.get(field))
    data = {"batch_id": batch["request_id"], "items": [card.as_json() for card in cards]}
    return _template().render(
        batch={**header, "id": batch["request_id"]},
        generated_at=generated_at,
        css=Markup(_asset("gallery.css")),  # noqa: S704  package asset, not user data
        js=Markup(_asset("gallery.js")),  # noqa: S704  package asset, not user data
        data_json=Markup(script_json(data)),  # noqa: S704  escaped for <script> above
    )


def _when(iso: str | None) -> str | None:
    """``2026-05-01T10:20:30.123+00:00`` as ``2026-05-01 10:20:30 UTC``."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=1)
def _template() -> Template:
    env = SandboxedEnvironment(autoescape=True, trim_blocks=False)
    return env.from_string(_asset("page.html"))


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return resources.files(PACKAGE).joinpath(name).read_text(encoding="utf-8")
