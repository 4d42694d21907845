"""The rows of a manifest: a CSV file, a JSONL file, or an inline list of mappings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.manifest.limits import ITEM_ROW_LABEL, fitted, storable
from scheduler.manifest.problems import Problems, shown

MAX_COLUMN_CHARS = 100  # a column's name

MAX_JSONL_LINE_CHARS = 2_000_000  # one JSONL row


@dataclass(frozen=True, slots=True)
class Row:
    """One row and its place: ``number`` is the file's line number, or the list index inline."""

    file: str
    number: int
    label: str
    values: dict[str, Any]


def read_text(path: Path, display: str, problems: Problems) -> str | None:
    """A UTF-8 file's text (a BOM is tolerated), or None after recording why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.add(display, f"cannot read the file: {exc.strerror or exc}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.add(display, "is not UTF-8 text", row=line)
        return None


class CsvTable:
    """A CSV file with a header (line 1); iterating yields its rows with their line numbers."""

    def __init__(self, path: Path, display: str, problems: Problems) -> None:
        self.display = display
        self.name = storable(path.name)
        self.problems = problems
        self.header: list[str] | None = None
        self._reader: Any = None
        text = read_text(path, display, problems)
        if text is None:
            return
        self._reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            first = next(self._reader, None)
        except csv.Error as exc:
            problems.add(display, f"malformed CSV header: {exc}", row=1)
            return
        if not first:
            problems.add(
                display, "has no header line (the first line must name the columns)", row=1
            )
            return
        header = [cell.strip() for cell in first]
        ok = True
        for index, cell in enumerate(header):
            if not cell:
                problems.add(display, f"header cell {index + 1} is empty", row=1)
                ok = False
            elif len(cell) > MAX_COLUMN_CHARS:
                problems.add(display, f"header cell {index + 1} is longer than "
                             f"{MAX_COLUMN_CHARS} characters", row=1)  # fmt: skip
                ok = False
            elif header.index(cell) != index:
                problems.add(display, f"header names column {shown(cell)} twice", row=1)
                ok = False
        if ok:
            self.header = header

    def __iter__(self) -> Iterator[Row]:
        if self.header is None:
            return
        header, width, reader = self.header, len(self.header), self._reader
        display, name, problems = self.display, self.name, self.problems
        last = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.add(display, f"malformed CSV: {exc}", row=last + 1)
                return
            line, last = last + 1, reader.line_num
            if not cells:
                continue
            if len(cells) != width:
                problems.add(
                    display, f"has {len(cells)} cells but the header has {width}", row=line
                )
                continue
            values = dict(zip(header, cells, strict=True))
            yield Row(display, line, row_label(name, line), values)


def row_label(file_name: str, line: int) -> str:
    """``products.csv line 4``, cut to fit the record's ``row_label`` column."""
    return fitted(file_name, ITEM_ROW_LABEL, keep_end=f" line {line}")


class DuplicateJsonKey(ValueError):
    """A JSON object names the same key twice."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateJsonKey(key)
        found[key] = value
    return found


def parse_json_row(raw: str) -> tuple[Any, str | None]:
    """A JSON value with no key written twice, or why it cannot be read."""
    if len(raw) > MAX_JSONL_LINE_CHARS:
        return None, f"the line is {len(raw):,} characters; a row may have {MAX_JSONL_LINE_CHARS:,}"
    try:
        return json.loads(raw, object_pairs_hook=_unique_pairs), None
    except DuplicateJsonKey as exc:
        return None, f"duplicate key {shown(exc.args[0])}: a key may appear once in an object"
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return None, f"invalid JSON: {shown(str(exc))}"


def jsonl_rows(path: Path, display: str, problems: Problems) -> Iterator[Row]:
    """The objects of a JSONL file, one per non-blank line."""
    text = read_text(path, display, problems)
    if text is None:
        return
    name = storable(path.name)
    for line, raw in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 is JSON text
        if not raw.strip():
            continue
        value, reason = parse_json_row(raw)
        if reason is not None:
            problems.add(display, reason, row=line)
            continue
        if not isinstance(value, dict):
            problems.add(display, "each line must be a JSON object", row=line)
            continue
        yield Row(display, line, row_label(name, line), value)


def inline_rows(rows: list[Any], display: str, problems: Problems) -> Iterator[Row]:
    """The mappings of an inline ``rows:`` list, numbered by index."""
    for index, value in enumerate(rows):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            problems.add(
                display, "each row must be a mapping of column names", row=index, field="rows"
            )
            continue
        yield Row(display, index, f"rows[{index}]", value)


def resolve_inside(root: Path, relative: str, real_root: Path | None = None) -> Path | str:
    """``relative`` under ``root``, symlinks resolved; or why it is not inside ``root``.

    ``real_root`` is ``root.resolve()`` when the caller already has it.
    """
    if not relative or "\x00" in relative:
        return "is not a valid path"
    candidate = root / relative
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        return "does not exist"
    except (OSError, RuntimeError) as exc:
        return f"cannot be resolved: {exc}"
    if not real.is_relative_to(real_root or root.resolve()):
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            return "is outside the manifest's folder"
        return "resolves (through a symlink) outside the manifest's folder"
    if not real.is_file():
        return "is not a regular file"
    return real
