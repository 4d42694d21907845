"""User data shown on a terminal: every character a terminal acts on comes out as an escape."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from stencil.cli.output import cell, kv_table, print_error
from stencil.errors import ManifestError, Problem
from stencil.terminal import printable, unsafe_char


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain café ✓", "plain café ✓"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\u202eb\u2066c", "a\\u202eb\\u2066c"),
        ("\x9b1m \x00 \x7f", "\\x9b1m \\x00 \\x7f"),
        ("line\nnext\r", "line\\x0anext\\x0d"),
        ("lone \ud800", "lone \\ud800"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert unsafe_char(shown) is None


def test_printable_can_keep_line_feeds() -> None:
    assert printable("a\nb\x1b", newlines=True) == "a\nb\\x1b"


def test_tables_and_errors_print_user_data_as_inert_text(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    monkeypatch.setattr("stencil.cli.output.err_console", console)
    console.print(kv_table({"name": "[bold]x[/x] \x1b]8;;http://evil\x07"}))
    console.print(cell("[/nope]"))
    problem = Problem(file="m\x1b[2J.yaml", message="key 'a\nb'", row=1, field="key")
    print_error(ManifestError([problem]))
    text = out.getvalue()
    assert "[bold]x[/x] \\x1b]8;;http://evil\\x07" in text and "[/nope]" in text
    assert "m\\x1b[2J.yaml, row 1, field 'key'" in text
    assert "\x1b]" not in text and "\x1b[2J" not in text
