"""Printing for the CLI: JSON for scripts, Rich tables for people, CSV safe for spreadsheets.

User data (names, keys, prompts, errors) reaches the terminal only through :func:`cell`,
:func:`say` or :func:`print_error`: as inert text, never Rich markup, with control characters,
escape sequences and bidi overrides shown as escapes (:func:`stencil.terminal.printable`). JSON
output is exact JSON with every non-ASCII character escaped, so it cannot carry them either.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stencil.errors import ManifestError
from stencil.terminal import printable

console = Console()
err_console = Console(stderr=True)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Text:
    """User data for a table cell or a line: inert text, terminal controls escaped."""
    return Text("" if value is None else printable(value))


def say(text: str, *, err: bool = False) -> None:
    """Print a line made from user data (its own line breaks kept, everything else escaped)."""
    (err_console if err else console).print(
        Text(printable(text, newlines=True)), soft_wrap=True, highlight=False
    )


def print_error(exc: BaseException, *, kind: str = "") -> None:
    """``error: <message>`` on stderr; each manifest problem on its own escaped line."""
    if isinstance(exc, ManifestError):
        lines = [str(exc).split("\n", 1)[0], *(f"  {printable(p)}" for p in exc.problems)]
        body = "\n".join(lines)
    else:
        body = printable(f"{kind}{exc}", newlines=True)
    message = Text("error:", style="red")
    message.append(" " + body)
    err_console.print(message, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas: a cell starting with = + - @ tab or CR gets a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer: csv.DictWriter[str] | None = None
    count = 0
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
        count += 1
    return count


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, default=str) + "\n")
        count += 1
    return count


def kv_table(data: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        table.add_row(cell(key), cell(value))
    return table
