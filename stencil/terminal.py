"""Text for a terminal: user data is shown, never obeyed.

A key, a name, a prompt or an error message can carry characters a terminal acts on: C0 and C1
control characters (ESC starts ANSI and OSC sequences that recolour, retitle or hyperlink the
terminal, or write to the clipboard), bidirectional overrides that reorder what is displayed
(U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C), line and paragraph separators, and lone
surrogates (which cannot even be encoded). :func:`printable` replaces each with a visible escape
such as ``\\x1b`` or ``\\u202e``; everything else is left as it is.
"""

from __future__ import annotations

import re

# Cc (C0, DEL, C1), bidi controls, line/paragraph separators, surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` (``str()`` of it) with every character a terminal would act on escaped.

    ``newlines=True`` keeps line feeds (for multi-line text such as a prompt); otherwise they are
    escaped too, so one value cannot fake a second line of output.
    """
    value = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_KEEP_LINES if newlines else _UNSAFE
    if pattern.search(value) is None:
        return value
    return pattern.sub(_escape, value)


def unsafe_char(text: str) -> str | None:
    """The first character of ``text`` a terminal would act on (see :func:`printable`), or None."""
    match = _UNSAFE.search(text)
    return None if match is None else match.group(0)
