"""Every provider's result is finalised here, before anything is stored, recorded or logged.

An answer is untrusted data, so:

- its strings (mime type, model version, response id, error status, finish reason, traffic type,
  message) lose control and invisible characters, go through the credential redactor, and are cut
  to the length of their column in ``models/tables.py`` (Postgres refuses a longer value, and one
  refused value used to stop the whole fleet);
- its image must be PNG, JPEG or WebP by its first bytes, and the result carries the sniffed
  type. Anything else (an SVG, HTML, empty bytes) is not stored: the attempt is ``no_image`` with
  the reason, so the item is retried at most ``STENCIL_NO_IMAGE_RETRIES`` times like any answer
  without an image;
- its token counts must lie within what one call can use. A count outside (negative, or beyond
  any model's window) is replaced by the estimate for this request, the attempt's message says
  so, and the cost follows from the replaced counts. A cost is never negative.

:class:`Checked` wraps every provider that :func:`worker.providers.get_provider` builds, so no
provider can skip this.
"""

from __future__ import annotations

import logging
import math
import re

from models.statuses import AttemptState
from models.tables import Attempt, Item
from stencil.catalog import TEXT_TOKENS_PER_CHAR, TOKENS_PER_REF_IMAGE, cost_micros, spec_for
from stencil.images import sniff_mime
from worker.providers.base import ImageRequest, ImageResult, Provider
from worker.providers.redact import MAX_MESSAGE, Redactor

log = logging.getLogger(__name__)
MAX_PROMPT_TOKENS = 1_048_576  # the largest input window of any Gemini model
MAX_OUTPUT_TOKENS = 65_536  # the largest output of any Gemini model
NOT_AN_IMAGE = "NOT_AN_IMAGE"
UNREADABLE_ANSWER = "UNREADABLE_ANSWER"
_PRE_CUT = 1 << 20  # text beyond this is dropped before redaction (see _clean)
# C0/C1 controls (tab and newline kept in messages), zero-width and bidi controls, lone surrogates
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_HIDDEN_LINE = re.compile(r"[\t\n]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _limit(table: type[Attempt] | type[Item], column: str) -> int:
    """The declared length of a column, MAX_MESSAGE for unbounded text."""
    length = getattr(table.__table__.c[column].type, "length", None)
    return int(length) if length else MAX_MESSAGE


# the ImageResult field -> the most characters its column takes
LIMITS: dict[str, int] = {
    "error_status": _limit(Attempt, "error_status"),
    "finish_reason": _limit(Attempt, "finish_reason"),
    "model_version": _limit(Attempt, "model_version"),
    "response_id": _limit(Attempt, "response_id"),
    "traffic_type": _limit(Attempt, "traffic_type"),
    "mime": _limit(Item, "content_type"),
    "message": min(MAX_MESSAGE, _limit(Attempt, "message"), _limit(Item, "error_message")),
}


def finalise(result: ImageResult, *, request: ImageRequest, redact: Redactor) -> ImageResult:
    """The result made safe to store, record and show (changed in place and returned)."""
    _check_image(result)
    _check_tokens(result, request)
    for name, limit in LIMITS.items():
        value = getattr(result, name)
        if value is not None:
            text = _clean(str(value), limit, redact, one_line=name != "message")
            setattr(result, name, text or None)
    return result


def estimated_tokens(request: ImageRequest) -> tuple[int, int]:
    """The prompt and output tokens the catalog's estimate assumes for this request."""
    prompt = math.ceil(len(request.prompt) * TEXT_TOKENS_PER_CHAR)
    prompt += len(request.refs) * TOKENS_PER_REF_IMAGE
    return prompt, spec_for(request.model).output_tokens(request.image_size)


def estimated_cost(request: ImageRequest) -> int:
    prompt, output = estimated_tokens(request)
    return cost_micros(request.model, prompt_tokens=prompt, output_tokens=output)


def _clean(text: str, limit: int, redact: Redactor, *, one_line: bool) -> str:
    """Hidden characters dropped (so a secret cannot hide from the redactor behind them),
    secrets redacted in the whole text, then cut. A text longer than _PRE_CUT is cut to it
    first: a secret cut in two there ends up far beyond ``limit`` after redaction."""
    text = _SURROGATES.sub("", _HIDDEN.sub("", text[:_PRE_CUT]))
    if one_line:
        text = _HIDDEN_LINE.sub(" ", text)
    return redact(text)[:limit].strip()


def _check_image(result: ImageResult) -> None:
    if result.state is not AttemptState.succeeded:
        result.image = None
        return
    data = result.image or b""
    sniffed = sniff_mime(data)
    if sniffed is not None:
        result.mime = sniffed
        return
    labelled = result.mime
    result.state = AttemptState.no_image
    result.image = None
    result.mime = None
    result.finish_reason = NOT_AN_IMAGE
    result.message = (
        f"the answer's image is not PNG, JPEG or WebP (labelled {labelled!r}, "
        f"{len(data)} bytes); it was not stored"
    )


def _check_tokens(result: ImageResult, request: ImageRequest) -> None:
    odd: list[str] = []
    prompt, output = estimated_tokens(request)
    if not 0 <= result.prompt_tokens <= MAX_PROMPT_TOKENS:
        odd.append(f"{_count(result.prompt_tokens)} prompt tokens")
        result.prompt_tokens = prompt
    if not 0 <= result.output_tokens <= MAX_OUTPUT_TOKENS:
        odd.append(f"{_count(result.output_tokens)} output tokens")
        result.output_tokens = output
    if odd:
        result.cost_micros = cost_micros(
            request.model, prompt_tokens=result.prompt_tokens, output_tokens=result.output_tokens
        )
        flag = (
            f"the answer's usage is not believable ({', '.join(odd)}): "
            "the estimate for this request was recorded instead"
        )
        result.message = f"{flag}; {result.message}" if result.message else flag
    result.cost_micros = max(0, result.cost_micros)


def _count(number: int) -> str:
    if abs(number) < 10**18:
        return str(number)
    return f"{'-' if number < 0 else ''}about 2^{abs(number).bit_length()}"


class Checked:
    """A provider whose every result goes through :func:`finalise`, then is logged."""

    def __init__(self, inner: Provider, *, redact: Redactor) -> None:
        self.inner = inner
        self.name = inner.name
        self._redact = redact

    def generate(self, request: ImageRequest) -> ImageResult:
        result = finalise(self.inner.generate(request), request=request, redact=self._redact)
        if result.state is AttemptState.succeeded:
            log.debug(
                "%s %s: image, %d micro-dollars", self.name, request.model, result.cost_micros
            )
        else:
            log.info(
                "%s %s: %s %s %s",
                self.name,
                request.model,
                result.state.value,
                result.http_code or "-",
                result.error_status or result.finish_reason or "",
            )
        return result
