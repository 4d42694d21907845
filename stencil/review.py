"""Review marks: the JSON file a gallery exports, checked whole, then recorded in one go.

The file::

    {"batch_id": "b_...",
     "marks": [{"request_id": "i_...", "key": "...", "variant": 1,
                "mark": "approved" | "rejected", "note": "..."}]}

Every entry must name an item of that batch whose image exists (status ``succeeded``), with the
item's own key and variant. Any problem names its entry and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.statuses import ItemStatus, ReviewMark
from stencil.errors import InputError, NotFoundError
from stencil.ids import IdKind, kind_of
from stencil.views import iter_items

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_NOTE_CHARS = 2000
MARKS = tuple(m.value for m in ReviewMark)


@dataclass(frozen=True)
class Mark:
    """One reviewer's verdict on one item."""

    request_id: str
    key: str
    variant: int
    mark: ReviewMark
    note: str


@dataclass(frozen=True)
class MarksFile:
    batch_id: str
    marks: list[Mark]


@dataclass(frozen=True)
class ImportResult:
    batch_id: str
    recorded: int
    approved: int
    rejected: int

    def as_json(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "recorded": self.recorded,
            "approved": self.approved,
            "rejected": self.rejected,
        }


def read_marks_file(path: Path) -> MarksFile:
    """Parse a marks file (shape and values only; see :func:`import_marks` for the batch)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a marks file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    return parse_marks(body, source=str(path))


def parse_marks(body: Any, *, source: str = "marks file") -> MarksFile:
    """Check the shape of a decoded marks file."""
    if not isinstance(body, dict):
        raise InputError(f"{source}: expected an object with 'batch_id' and 'marks'")
    unknown = sorted(set(body) - {"batch_id", "marks"})
    if unknown:
        raise InputError(f"{source}: unknown field(s) {', '.join(map(repr, unknown))}")
    batch_id = body.get("batch_id")
    if not isinstance(batch_id, str) or kind_of(batch_id) is not IdKind.batch:
        raise InputError(f"{source}: 'batch_id' must be a batch id (b_...), got {batch_id!r}")
    entries = body.get("marks")
    if not isinstance(entries, list):
        raise InputError(f"{source}: 'marks' must be a list")
    marks: list[Mark] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        mark = _parse_entry(entry, f"{source}: marks entry {number}")
        if mark.request_id in seen:
            raise InputError(
                f"{source}: marks entry {number}: {mark.request_id} is marked more than once"
            )
        seen.add(mark.request_id)
        marks.append(mark)
    return MarksFile(batch_id, marks)


def _parse_entry(entry: Any, where: str) -> Mark:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object")
    unknown = sorted(set(entry) - {"request_id", "key", "variant", "mark", "note"})
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    request_id = entry.get("request_id")
    if not isinstance(request_id, str) or kind_of(request_id) is not IdKind.item:
        raise InputError(f"{where}: 'request_id' must be an item id (i_...), got {request_id!r}")
    where = f"{where} ({request_id})"
    key = entry.get("key")
    if not isinstance(key, str):
        raise InputError(f"{where}: 'key' must be a string")
    variant = entry.get("variant")
    if not isinstance(variant, int) or isinstance(variant, bool):
        raise InputError(f"{where}: 'variant' must be an integer")
    value = entry.get("mark")
    if value not in MARKS:
        raise InputError(f"{where}: 'mark' must be one of {', '.join(MARKS)}, got {value!r}")
    note = entry.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise InputError(f"{where}: 'note' must be a string")
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"{where}: 'note' is longer than {MAX_NOTE_CHARS} characters")
    return Mark(request_id, key, variant, ReviewMark(value), note.strip())


def import_marks(*, session: Session, marks_file: MarksFile) -> ImportResult:
    """Check every mark against the batch, then record them all (the caller commits once)."""
    batch_id = marks_file.batch_id
    if batch_queries.get_batch(session=session, batch_id=batch_id) is None:
        raise NotFoundError(f"no batch has the request id {batch_id!r}")
    items = {item.id: item for item in iter_items(session, batch_id)}
    for number, mark in enumerate(marks_file.marks, start=1):
        where = f"marks entry {number} ({mark.request_id})"
        item = items.get(mark.request_id)
        if item is None:
            raise InputError(f"{where}: not an item of batch {batch_id}; nothing was recorded")
        if (item.key, item.variant) != (mark.key, mark.variant):
            raise InputError(
                f"{where}: key/variant {mark.key!r} #{mark.variant} do not match the item's "
                f"{item.key!r} #{item.variant}; nothing was recorded"
            )
        if item.status != ItemStatus.succeeded.value:
            raise InputError(
                f"{where}: the item is {item.status}, not succeeded: only images can be "
                "reviewed; nothing was recorded"
            )
    recorded = item_queries.set_reviews(
        session=session,
        marks=[(m.request_id, m.mark.value, m.note or None) for m in marks_file.marks],
    )
    session.flush()
    rejected = sum(1 for m in marks_file.marks if m.mark is ReviewMark.rejected)
    return ImportResult(batch_id, recorded, len(marks_file.marks) - rejected, rejected)
