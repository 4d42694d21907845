"""Storing a paid image: the owner fence, a few quick retries of the write, then the spool.

The bytes are paid for when they get here, so nothing in this module calls the model again:

- the item writes its output key only if it owns it (``output_keys``); a key held by another
  item is never written, and the attempt fails the item with the owner's name;
- a transient store error is retried in place a few times with a short backoff;
- an image storage still will not take is kept in the spool, and the attempt ends ``unstored``:
  the item's next start stores those bytes instead of calling the model. When storage refuses
  writes for good (no space, read-only, permission, path conflict, bucket or credentials
  refused) the attempt is marked so that the batch stops with that reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import output_keys as key_queries
from models.statuses import AttemptState
from stencil.errors import StorageError
from stencil.settings import Settings
from stencil.storage.base import Storage
from worker.providers.base import ImageResult
from worker.sidecar import sidecar_key
from worker.spool import Held, Spool

log = logging.getLogger(__name__)
STORE_BACKOFF_S = (0.2, 1.0)  # waits between in-place tries of a write (three tries in all)
# error_status of attempts that failed on Stencil's side in a way every item would meet too
STORAGE_REFUSED = "STORAGE_REFUSED"  # the store refuses writes until someone fixes it
REFERENCE_REFUSED = "REFERENCE_REFUSED"  # a reference in the store is missing or altered


@dataclass(frozen=True)
class Target:
    """Where an item's image goes, and who may write it."""

    key: str
    item_id: str
    batch_id: str


def spool_for(settings: Settings) -> Spool:
    return Spool(settings.resolved_spool_dir)


def foreign_owner(target: Target) -> str | None:
    """The fenced check: None when this item owns its key (claimed now if free), else why not."""
    with session_scope() as session:
        owner = key_queries.claim_for_write(
            session=session,
            key=target.key,
            item_id=target.item_id,
            batch_id=target.batch_id,
            now=utcnow(),
        )
    if owner is None:
        return None
    return f"output key {target.key!r} is owned by {owner.describe()}; it is not overwritten"


HELD_STATES = frozenset(  # attempts whose paid image may be waiting in the spool
    {
        AttemptState.unstored.value,
        # the worker kept the image, then died before recording it: the sweeper could not know
        AttemptState.outcome_unknown.value,
    }
)


def find_held(item_id: str, settings: Settings) -> Held | None:
    """A paid image of this item waiting in the local spool (an ``unstored`` attempt's)."""
    spool = spool_for(settings)
    if not spool.has_item(item_id):
        return None
    with session_scope() as session:
        attempts = attempt_queries.attempts_of(session=session, item_id=item_id)
        held = [a.id for a in attempts if a.state in HELD_STATES]
    return spool.held(item_id=item_id, attempt_ids=reversed(held))


def store(
    *,
    storage: Storage,
    spool: Spool,
    target: Target,
    attempt_id: str,
    result: ImageResult,
    sidecar: bytes,
    held: Held | None = None,
) -> ImageResult:
    """Write the image, then its sidecar (the commit mark); ``result`` says what happened."""
    assert result.image is not None
    try:
        refused = foreign_owner(target)
    except Exception as exc:  # the record cannot be read: keep the paid bytes, try later
        log.warning("cannot check the owner of %r: %s", target.key, exc)
        kept, ok = ("", True) if held else _keep(spool, target, attempt_id, result, sidecar)
        result.state = AttemptState.unstored if ok else AttemptState.transient
        result.message = f"cannot check who owns {target.key!r} ({type(exc).__name__}){kept}"
        return result
    if refused is not None:
        kept = "" if held else _keep(spool, target, attempt_id, result, sidecar)[0]
        result.state = AttemptState.invalid
        result.message = f"{refused}{kept}"
        return result
    try:
        _put(storage, target.key, result.image, result.mime or "image/png")
        _put(storage, sidecar_key(target.key), sidecar, "application/json")
    except StorageError as exc:
        if held is not None:
            result.state = AttemptState.unstored
            result.message = f"{exc}; the image paid by {held.attempt_id} stays in the spool"
        else:
            kept, ok = _keep(spool, target, attempt_id, result, sidecar)
            result.state = AttemptState.unstored if ok else AttemptState.transient
            result.message = f"{exc}{kept}"
        if exc.permanent:
            result.error_status = STORAGE_REFUSED
    return result


def _put(storage: Storage, key: str, data: bytes, content_type: str) -> None:
    """One write, retried in place on transient errors (the bytes are held: no new call)."""
    for wait_s in (*STORE_BACKOFF_S, None):
        try:
            storage.put(key, data, content_type)
            return
        except StorageError as exc:
            if exc.permanent or wait_s is None:
                raise
            log.warning("storing %r failed; trying again in %.1fs: %s", key, wait_s, exc)
            time.sleep(wait_s)


def _keep(
    spool: Spool, target: Target, attempt_id: str, result: ImageResult, sidecar: bytes
) -> tuple[str, bool]:
    """Keep a paid image in the spool: the words to add to the message, and whether it worked."""
    assert result.image is not None
    try:
        path = spool.keep(
            item_id=target.item_id,
            attempt_id=attempt_id,
            image=result.image,
            mime=result.mime or "image/png",
            sidecar=sidecar,
        )
    except OSError as exc:
        log.error("cannot keep the paid image of attempt %s in the spool: %s", attempt_id, exc)
        return f"; the paid image could not be kept in the spool either ({exc})", False
    return f"; the paid image is held in the spool ({path}) until it can be stored", True
