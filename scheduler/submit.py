"""Submission: a manifest becomes a batch and its items in one transaction, or nothing at all.

Reference images are uploaded to storage under content-addressed keys before the transaction
(an orphan from a failed submit is harmless and reused by the next one; an object that no longer
matches its digest is written again). Items whose fingerprint already succeeded are completed by
reference at zero cost unless ``force`` is set, provided the image is still stored and its
sidecar names the same fingerprint (a chained item too, once every image it depends on is
reused: its fingerprint then has their digests, scheduler/chains.py). Every other item claims
its output key (scheduler/ownership): a key another batch holds is a problem, or with ``force``
a new version of the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import session_scope
from models.queries import items as item_queries
from models.statuses import BatchStatus, ItemStatus, QaState
from models.tables import Batch, Item
from scheduler.chains import link_rows, resolve_reused, settle_batch
from scheduler.manifest import ItemSpec, Plan, SubmitOptions, load_plan
from scheduler.ownership import KeyPlan, plan_keys, write_claims
from stencil.catalog import micros_to_usd
from stencil.errors import InputError, ObjectMissing
from stencil.ids import IdKind, new_id
from stencil.settings import Settings
from stencil.storage import open_storage
from stencil.storage.base import Storage
from worker.sidecar import image_intact

REUSE_CHECK_THREADS = 16  # reuse checks read sidecars; S3 round trips overlap


@dataclass
class Submission:
    """What a submit did (or, for a dry run, would do)."""

    plan: Plan
    reused: int = 0
    estimated_micros: int = 0
    model_estimate_micros: int = 0  # what every item would cost on the model, reuse aside
    dry_run: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def batch_id(self) -> str:
        return self.plan.batch_id

    @property
    def items(self) -> int:
        return len(self.plan.items)

    def summary(self) -> dict[str, Any]:
        """What the submit would do or did, for people and scripts (CLI and HTTP alike)."""
        plan = self.plan
        return {
            "name": plan.name,
            "provider": plan.provider,
            "model": plan.model,
            "preview": plan.provider == "preview",
            "items": self.items,
            "reused": self.reused,
            "estimated_cost_usd": micros_to_usd(self.estimated_micros),
            "estimated_cost_on_model_usd": micros_to_usd(self.model_estimate_micros),
            "budget_usd": None if plan.budget_micros is None else micros_to_usd(plan.budget_micros),
            "warnings": plan.warnings,
            "samples": self.samples,
        }


def load(path: Path, *, options: SubmitOptions, settings: Settings, s3_refs: bool = True) -> Plan:
    """Parse and check a manifest; raises ManifestError with every problem, writes nothing.

    ``s3_refs=False`` refuses s3:// references (HTTP submissions: the server's credentials must
    not read objects for a caller)."""
    return load_plan(
        path,
        options=options,
        settings=settings,
        batch_id=new_id(IdKind.batch),
        s3_reader=_s3_reader(settings) if s3_refs else _no_s3_reader,
        https_fetcher=_https_fetcher(settings),
    )


def submit(
    path: Path,
    *,
    options: SubmitOptions,
    settings: Settings,
    force: bool = False,
    dry_run: bool = False,
    s3_refs: bool = True,
    on_insert: Callable[[Session, Submission], None] | None = None,
) -> Submission:
    """Submit a manifest. ``on_insert`` runs in the batch's transaction, after its rows (the HTTP
    API records the tenant, the webhook and the idempotent answer there)."""
    plan = load(path, options=options, settings=settings, s3_refs=s3_refs)
    storage = open_storage(settings)
    with session_scope() as session:
        gone: set[str] = set()
        reuse = {} if force else _reusable(session, plan.items, storage, gone)
        if not force:  # chained items whose dependencies are reused: final fingerprints, reuse
            find = partial(_reusable, session, storage=storage, gone=gone)
            resolve_reused(plan, reuse, storage, find)
        fresh = [spec for spec in plan.items if spec.fingerprint not in reuse]
        keys = plan_keys(session, plan, fresh, storage=storage, force=force, gone=gone)
        submission = Submission(
            plan=plan,
            reused=sum(1 for spec in plan.items if spec.fingerprint in reuse),
            estimated_micros=sum(
                _estimate(plan, spec) for spec in plan.items if spec.fingerprint not in reuse
            ),
            model_estimate_micros=plan.estimated_micros,
            dry_run=dry_run,
            samples=[
                {
                    "key": s.key,
                    "variant": s.variant,
                    "prompt": s.prompt,
                    "output": reuse[s.fingerprint].output_key
                    if s.fingerprint in reuse
                    else keys.key_for(s),
                }
                for s in plan.items[:3]
            ],
        )
        if dry_run:
            return submission
        _upload_refs(plan, storage)
        _insert(session, plan, reuse, keys, submission.estimated_micros, force=force)
        settle_batch(session, batch_id=plan.batch_id, storage=storage, now=utcnow())
        if on_insert is not None:
            on_insert(session, submission)
    return submission


def _reusable(
    session: Session, specs: Sequence[ItemSpec], storage: Storage, gone: set[str]
) -> dict[str, Item]:
    """Succeeded items to complete these items by reference: only those whose image is still
    stored with a sidecar of the same fingerprint (``gone`` collects the keys that fail)."""
    fingerprints = list({spec.fingerprint for spec in specs})
    found = item_queries.succeeded_by_fingerprint(session=session, fingerprints=fingerprints)
    if not found:
        return {}
    with ThreadPoolExecutor(max_workers=min(REUSE_CHECK_THREADS, len(found))) as pool:
        checks = pool.map(
            lambda item: image_intact(
                storage, output_key=item.output_key, fingerprint=item.fingerprint
            ),
            found.values(),
        )
        intact = dict(zip(found, checks, strict=True))
    gone.update(item.output_key for fp, item in found.items() if not intact[fp])
    return {fp: item for fp, item in found.items() if intact[fp]}


def _upload_refs(plan: Plan, storage: Storage) -> None:
    """Write each reference under its content address, again if the stored bytes changed."""
    keys = {ref.digest: ref for spec in plan.items for ref in spec.refs if ref.key}
    for digest, data in plan.ref_data.items():
        ref = keys.get(digest)
        if ref is None or not ref.key:
            continue
        try:
            current: bytes | None = storage.get(ref.key)
        except ObjectMissing:
            current = None
        if current is None or hashlib.sha256(current).hexdigest() != digest:
            storage.put(ref.key, data, ref.mime)


def _insert(
    session: Session,
    plan: Plan,
    reuse: dict[str, Item],
    keys: KeyPlan,
    estimated: int,
    *,
    force: bool,
) -> None:
    now = utcnow()
    session.add(
        Batch(
            id=plan.batch_id,
            name=plan.name,
            provider=plan.provider,
            model=plan.model,
            status=BatchStatus.running.value,
            priority=plan.priority,
            budget_micros=plan.budget_micros,
            estimated_micros=estimated,
            item_count=len(plan.items),
            source=plan.source,
            created_at=now,
        )
    )
    session.flush()
    rows = _item_rows(plan, reuse, keys, now, force=force)
    link_rows(rows)  # chained references: dependency ids; their items wait (pending_deps)
    item_queries.bulk_insert(session=session, rows=rows)
    new_items = {row["seq"]: row["id"] for row in rows if row["reused_from"] is None}
    write_claims(session, plan, keys, new_items, now)


def _item_rows(
    plan: Plan, reuse: dict[str, Item], keys: KeyPlan, now: Any, *, force: bool
) -> Sequence[dict[str, Any]]:
    rows = []
    for spec in plan.items:
        source = reuse.get(spec.fingerprint)
        rows.append(
            {
                "id": new_id(IdKind.item),
                "batch_id": plan.batch_id,
                "seq": spec.seq,
                "key": spec.key,
                "variant": spec.variant,
                "row_label": spec.row_label,
                "prompt": spec.prompt,
                "refs": [ref.as_json() for ref in spec.refs],
                "aspect_ratio": spec.aspect_ratio,
                "image_size": spec.image_size,
                "fingerprint": spec.fingerprint,
                "output_key": source.output_key if source else keys.key_for(spec),
                "status": (ItemStatus.succeeded if source else ItemStatus.queued).value,
                "attempts": 0,
                "no_image_count": 0,
                "estimate_micros": _estimate(plan, spec),
                "cost_micros": 0,
                "reused_from": source.id if source else None,
                "content_type": source.content_type if source else None,
                "error_kind": None,
                "created_at": now,
                "updated_at": now,
                "finished_at": now if source else None,
                "force": force,
                "checks": spec.checks,
                "qa": QaState.pending.value if spec.checks else None,
            }
        )
    return rows


def _estimate(plan: Plan, spec: ItemSpec) -> int:
    """Previews are free: nothing to estimate or reserve."""
    return 0 if plan.provider == "preview" else spec.estimate_micros


def _s3_reader(settings: Settings) -> Any:
    """A reader of s3:// references, or None when no S3 is configured: the manifest problem then
    names the field, and boto3 never goes looking for credentials on the network."""
    from stencil.storage.s3 import read_s3_url, s3_configured

    if not s3_configured(endpoint_url=settings.s3_endpoint_url, storage_url=settings.storage_url):
        return None

    def read(url: str) -> bytes:
        return read_s3_url(
            url,
            endpoint_url=settings.s3_endpoint_url,
            instance_metadata=settings.s3_instance_metadata,
        )

    return read


def _no_s3_reader(url: str) -> bytes:
    raise InputError("s3:// references are not read for HTTP submissions; upload the image")


def _https_fetcher(settings: Settings) -> Any:
    def fetch(url: str) -> bytes:
        from stencil.fetcher import fetch_image

        return fetch_image(url, settings=settings)

    return fetch
