"""Submission: a manifest becomes a batch and its items in one transaction, or nothing at all.

Reference images are uploaded to storage under content-addressed keys before the transaction
(an orphan from a failed submit is harmless and reused by the next one). Items whose fingerprint
already succeeded are completed by reference at zero cost unless ``force`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import session_scope
from models.queries import items as item_queries
from models.statuses import BatchStatus, ItemStatus
from models.tables import Batch, Item
from scheduler.manifest import ItemSpec, Plan, SubmitOptions, load_plan
from stencil.ids import IdKind, new_id
from stencil.settings import Settings
from stencil.storage import open_storage
from stencil.storage.base import Storage


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


def load(path: Path, *, options: SubmitOptions, settings: Settings) -> Plan:
    """Parse and check a manifest; raises ManifestError with every problem, writes nothing."""
    return load_plan(
        path,
        options=options,
        settings=settings,
        batch_id=new_id(IdKind.batch),
        s3_reader=_s3_reader(settings),
        https_fetcher=_https_fetcher(settings),
    )


def submit(
    path: Path,
    *,
    options: SubmitOptions,
    settings: Settings,
    force: bool = False,
    dry_run: bool = False,
) -> Submission:
    plan = load(path, options=options, settings=settings)
    with session_scope() as session:
        reuse = {} if force else _reusable(session, plan)
        submission = Submission(
            plan=plan,
            reused=sum(1 for spec in plan.items if spec.fingerprint in reuse),
            estimated_micros=sum(
                _estimate(plan, spec) for spec in plan.items if spec.fingerprint not in reuse
            ),
            model_estimate_micros=plan.estimated_micros,
            dry_run=dry_run,
            samples=[
                {"key": s.key, "variant": s.variant, "prompt": s.prompt, "output": s.output_key}
                for s in plan.items[:3]
            ],
        )
        if dry_run:
            return submission
        _upload_refs(plan, open_storage(settings))
        _insert(session, plan, reuse, submission.estimated_micros)
    return submission


def _reusable(session: Session, plan: Plan) -> dict[str, Item]:
    fingerprints = list({spec.fingerprint for spec in plan.items})
    return item_queries.succeeded_by_fingerprint(session=session, fingerprints=fingerprints)


def _upload_refs(plan: Plan, storage: Storage) -> None:
    keys = {ref.digest: ref for spec in plan.items for ref in spec.refs if ref.key}
    for digest, data in plan.ref_data.items():
        ref = keys.get(digest)
        if ref is not None and ref.key and not storage.exists(ref.key):
            storage.put(ref.key, data, ref.mime)


def _insert(session: Session, plan: Plan, reuse: dict[str, Item], estimated: int) -> None:
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
    item_queries.bulk_insert(session=session, rows=_item_rows(plan, reuse, now))


def _item_rows(plan: Plan, reuse: dict[str, Item], now: Any) -> Sequence[dict[str, Any]]:
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
                "output_key": source.output_key if source else spec.output_key,
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
            }
        )
    return rows


def _estimate(plan: Plan, spec: ItemSpec) -> int:
    """Previews are free: nothing to estimate or reserve."""
    return 0 if plan.provider == "preview" else spec.estimate_micros


def _s3_reader(settings: Settings) -> Any:
    def read(url: str) -> bytes:
        from stencil.storage.s3 import read_s3_url

        return read_s3_url(url, endpoint_url=settings.s3_endpoint_url)

    return read


def _https_fetcher(settings: Settings) -> Any:
    def fetch(url: str) -> bytes:
        from stencil.fetcher import fetch_image

        return fetch_image(url, settings=settings)

    return fetch
