"""Output key ownership at submit: every new item claims the key its image goes to.

A key held by an item of another batch (succeeded, or not yet ended) is a problem naming that
batch (except for a twin still at work: same fingerprint, so the same image), unless ``--force``
is given: then the new item writes the first free version of the key
(``hero.png`` -> ``hero.v2.png``). A key whose owner ended without an image moves to the new
item, and so does one whose owner succeeded with the same fingerprint but whose image is gone
from storage (the new image is what that owner described). Claims are written in the batch's
transaction; a concurrent submit that claimed a key first turns into the same problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.queries import output_keys as key_queries
from models.queries.output_keys import Owner
from models.statuses import ItemStatus
from scheduler.manifest import ItemSpec, Plan
from stencil.errors import ManifestError, Problem, StorageError
from stencil.storage.base import Storage

SHOWN_CONFLICTS = 20  # conflicts listed one by one; the rest are counted
OUTPUT_FIELD = "output"
_VERSION = re.compile(r"^(?P<stem>.*)\.v(?P<n>\d+)$")


@dataclass
class KeyPlan:
    """Where each new item's image goes (by seq), and what to write in ``output_keys``."""

    keys: dict[int, str] = field(default_factory=dict)
    claims: list[str] = field(default_factory=list)  # free keys to insert
    takeovers: dict[str, str] = field(default_factory=dict)  # key -> the owner it moves from

    def key_for(self, spec: ItemSpec) -> str:
        return self.keys.get(spec.seq, spec.output_key)


def plan_keys(
    session: Session,
    plan: Plan,
    specs: list[ItemSpec],
    *,
    storage: Storage,
    force: bool,
    gone: set[str],
) -> KeyPlan:
    """Decide each new item's key; raises ManifestError listing keys other batches hold.

    ``gone``: keys whose image the reuse check found missing (no need to ask storage again).
    """
    result = KeyPlan()
    found = key_queries.owners(session=session, keys=[s.output_key for s in specs])
    conflicts: list[tuple[ItemSpec, Owner]] = []
    for spec in specs:
        owner = found.get(spec.output_key)
        if owner is None:
            result.claims.append(spec.output_key)
        elif not owner.holds or _image_gone_for(owner, spec, storage, gone):
            result.takeovers[spec.output_key] = owner.item_id
        elif not force and _twin(owner, spec):
            continue  # the twin's image will be this item's too (the worker waits for it)
        else:
            conflicts.append((spec, owner))
    if conflicts and not force:
        raise ManifestError(_problems(plan, conflicts))
    used = {s.output_key for s in plan.items}
    for spec, _owner in conflicts:
        key = _first_free_version(session, spec.output_key, used)
        used.add(key)
        result.keys[spec.seq] = key
        result.claims.append(key)
    return result


def write_claims(
    session: Session, plan: Plan, keys: KeyPlan, item_ids: dict[int, str], now: datetime
) -> None:
    """Record the owners (in the batch's transaction). A key another submit took meanwhile is the
    same problem as at planning, and the caller's transaction is rolled back: nothing written."""
    owner_of = {
        keys.key_for(spec): item_ids[spec.seq] for spec in plan.items if spec.seq in item_ids
    }
    lost: list[str] = []
    for key in sorted(keys.takeovers):  # one order for every submit: no deadlock between two
        if not key_queries.take_over(
            session=session,
            key=key,
            item_id=owner_of[key],
            batch_id=plan.batch_id,
            previous=keys.takeovers[key],
            now=now,
        ):
            lost.append(key)
    if not lost:
        rows = [
            {"key": key, "item_id": owner_of[key], "batch_id": plan.batch_id, "claimed_at": now}
            for key in sorted(keys.claims)
        ]
        try:
            key_queries.claim(session=session, rows=rows)
        except IntegrityError:
            session.rollback()
            lost = sorted(keys.claims)
    if lost:
        session.rollback()
        found = key_queries.owners(session=session, keys=lost)
        by_key = {keys.key_for(spec): spec for spec in plan.items}
        conflicts = [(by_key[k], o) for k, o in found.items() if o.batch_id != plan.batch_id]
        if not conflicts:  # the other submit rolled back meanwhile: ask to submit again
            raise ManifestError(
                [
                    Problem(
                        plan.source,
                        "another submit claimed the same output keys at the same "
                        "time; nothing was written: submit again",
                        field=OUTPUT_FIELD,
                    )
                ]
            )
        raise ManifestError(_problems(plan, conflicts))


def versioned(key: str, number: int) -> str:
    """Version ``number`` of a key: ``hero.png`` -> ``hero.v2.png``, ``a/b`` -> ``a/b.v2``,
    ``hero.v2.png`` -> ``hero.v3.png`` for 3."""
    folder, stem, ext, _ = _parts(key)
    return f"{folder}{stem}.v{number}{ext}"


def _parts(key: str) -> tuple[str, str, str, int | None]:
    """``a/hero.v2.png`` as ``("a/", "hero", ".png", 2)``."""
    folder, slash, name = key.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    match = _VERSION.match(stem)
    number = int(match["n"]) if match else None
    if match:
        stem = match["stem"]
    return folder + slash, stem, f".{ext}" if ext else "", number


def _first_free_version(session: Session, key: str, used: set[str]) -> str:
    number = _parts(key)[3]
    start = number + 1 if number else 2
    while True:
        candidates = [versioned(key, n) for n in range(start, start + 20)]
        owned = key_queries.taken(session=session, keys=candidates)
        for candidate in candidates:
            if candidate not in owned and candidate not in used:
                return candidate
        start += 20


def _twin(owner: Owner, spec: ItemSpec) -> bool:
    """The owner is still to make the very image this item describes (same fingerprint)."""
    return owner.status != ItemStatus.succeeded.value and owner.fingerprint == spec.fingerprint


def _image_gone_for(owner: Owner, spec: ItemSpec, storage: Storage, gone: set[str]) -> bool:
    """The owner succeeded with this very fingerprint but its image is no longer stored."""
    if owner.status != ItemStatus.succeeded.value or owner.fingerprint != spec.fingerprint:
        return False
    if owner.key in gone:
        return True
    try:
        return not storage.exists(owner.key)
    except StorageError:
        return False  # cannot tell: keep the owner


def _cancel_hint(owner: Owner) -> str:
    if owner.status == ItemStatus.succeeded.value:
        return ""
    return f"`stencil cancel {owner.batch_id}` frees the keys its unfinished items hold, or "


def _problems(plan: Plan, conflicts: list[tuple[ItemSpec, Owner]]) -> list[Problem]:
    problems = [
        Problem(
            plan.source,
            f"{spec.row_label} variant {spec.variant}: output key {spec.output_key!r} belongs "
            f"to {owner.describe()}; {_cancel_hint(owner)}submit with --force to write a new "
            f"version ({versioned(spec.output_key, 2)!r}), or put {{{{ batch }}}} in the output "
            "template so each batch writes its own keys",
            field=OUTPUT_FIELD,
        )
        for spec, owner in conflicts[:SHOWN_CONFLICTS]
    ]
    if len(conflicts) > SHOWN_CONFLICTS:
        more = len(conflicts) - SHOWN_CONFLICTS
        problems.append(
            Problem(
                plan.source, f"and {more} more output keys of other batches", field=OUTPUT_FIELD
            )
        )
    return problems
