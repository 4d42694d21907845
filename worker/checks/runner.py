"""The check runner: a thread of the scheduler process that checks stored images, apart from the
calls (a worker never waits for a check, and a slow check never holds a window slot).

Its queue is the record: succeeded items with ``qa = pending``. Each round reads up to
:data:`BATCH` images from storage and measures them outside any transaction, then records each
outcome (``passed``, or ``failed`` with the reasons in ``qa_note``) only if the item still has
that image. Near-duplicates are judged against the images of the batch already checked.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from models.db import session_scope
from models.queries import checks as check_queries
from models.statuses import QaState
from stencil.errors import StorageError
from stencil.settings import Settings
from stencil.storage import open_storage
from stencil.storage.base import Storage
from worker.checks.image import Measure, Unreadable, blank_problem, distance, measure, size_problem
from worker.checks.text import DEFAULT_TOLERANCE, OcrUnavailable, read_text, text_problem

log = logging.getLogger(__name__)
BATCH = 50
EVERY_S = 0.5
NOTE_CHARS = 1000


@dataclass(frozen=True)
class Job:
    item_id: str
    batch_id: str
    key: str
    variant: int
    fingerprint: str
    output_key: str
    aspect_ratio: str | None
    image_size: str | None
    checks: dict[str, object]


def run_round(*, storage: Storage, limit: int = BATCH) -> int:
    """Check up to ``limit`` due images; how many outcomes were recorded."""
    with session_scope() as session:
        jobs = [
            Job(
                i.id,
                i.batch_id,
                i.key,
                i.variant,
                i.fingerprint,
                i.output_key,
                i.aspect_ratio,
                i.image_size,
                dict(i.checks or {}),
            )
            for i in check_queries.due(session=session, limit=limit)
        ]
    measured: list[tuple[Job, Measure | str]] = []
    for job in jobs:
        try:
            data = storage.get(job.output_key)
            shape = measure(data)
        except Unreadable as exc:
            measured.append((job, str(exc)))
            continue
        except StorageError as exc:  # tried again next round
            log.warning("checks: cannot read the image of %s: %s", job.item_id, exc)
            continue
        measured.append((job, _with_text(job, shape, data)))
    done = 0
    with session_scope() as session:
        seen: dict[str, list[tuple[str, str, int, str, str]]] = {}
        for job, found in measured:
            if job.batch_id not in seen:
                seen[job.batch_id] = check_queries.hashes(session=session, batch_id=job.batch_id)
            problems = [found] if isinstance(found, str) else _problems(job, found, seen)
            values: dict[str, object] = {
                "qa": (QaState.failed if problems else QaState.passed).value,
                "qa_note": "; ".join(problems)[:NOTE_CHARS] or None,
                "qa_hash": None if isinstance(found, str) else f"{found.dhash:016x}",
            }
            if check_queries.record(
                session=session, item_id=job.item_id, output_key=job.output_key, values=values
            ):
                done += 1
                if not isinstance(found, str):
                    seen[job.batch_id].append(
                        (job.item_id, job.key, job.variant, job.fingerprint, f"{found.dhash:016x}")
                    )
    return done


def _with_text(job: Job, found: Measure, data: bytes) -> Measure:
    """The measure, with the text OCR read when the item expects a text."""
    if not isinstance(job.checks.get("expect_text"), str):
        return found
    try:
        return replace(found, text=read_text(data))
    except OcrUnavailable as exc:  # a failed check that says why; `retry --qa-failed` redoes it
        return replace(found, text=None, text_error=str(exc))


def _problems(
    job: Job, m: Measure, seen: dict[str, list[tuple[str, str, int, str, str]]]
) -> list[str]:
    problems = []
    if job.checks.get("size"):
        problems.append(size_problem(m, job.aspect_ratio, job.image_size))
    blank = job.checks.get("blank")
    if isinstance(blank, int | float) and not isinstance(blank, bool):
        problems.append(blank_problem(m, float(blank)))
    expected = job.checks.get("expect_text")
    if isinstance(expected, str):
        tolerance = job.checks.get("text_tolerance", DEFAULT_TOLERANCE)
        if m.text is None:
            problems.append(f"the text check could not run: {m.text_error}")
        else:
            problems.append(text_problem(expected, m.text, float(str(tolerance))))
    limit = job.checks.get("duplicates")
    if isinstance(limit, int) and not isinstance(limit, bool):
        for other_id, key, variant, fingerprint, other in seen.get(job.batch_id, []):
            if other_id == job.item_id or fingerprint == job.fingerprint:
                continue  # the same request: the same image is expected
            gap = distance(m.dhash, int(other, 16))
            if gap <= limit:
                problems.append(
                    f"near-duplicate of {key!r} variant {variant} (distance {gap} <= {limit})"
                )
                break
    return [p for p in problems if p]


class CheckRunner:
    """Runs rounds every :data:`EVERY_S` on a daemon thread until ``stop`` is set."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.storage = open_storage(settings)
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name="checks", daemon=True)

    def start(self) -> CheckRunner:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(EVERY_S):
            try:
                while run_round(storage=self.storage) == BATCH and not self.stop.is_set():
                    pass
            except Exception as exc:
                log.warning("check round failed (tried again): %s", exc)


def start_check_runner(settings: Settings, stop: threading.Event) -> CheckRunner:
    return CheckRunner(settings, stop).start()
