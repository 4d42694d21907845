"""A batch written straight into the database, with small PNG outputs in a local store."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image
from sqlalchemy.orm import Session

from models.queries import items as item_queries
from models.tables import Batch
from stencil.ids import IdKind, new_id
from stencil.storage.base import Storage


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class Seeded:
    batch_id: str
    item_ids: list[str]


def seed_batch(
    session: Session,
    storage: Storage,
    *,
    count: int,
    statuses: dict[int, tuple[str, str | None, str | None]] | None = None,
    provider: str = "preview",
    name: str = "seeded",
    prompt: str = "a product photo of item {n}",
    size: tuple[int, int] = (64, 80),
) -> Seeded:
    """``count`` items, succeeded unless ``statuses[seq] = (status, error_kind, message)``."""
    now = datetime.now(UTC)
    batch_id = new_id(IdKind.batch)
    session.add(
        Batch(
            id=batch_id, name=name, provider=provider, model="gemini-2.5-flash-image",
            status="done", source="seed", item_count=count, spent_micros=count * 39_000,
            created_at=now, finished_at=now,
        )
    )  # fmt: skip
    session.flush()
    rows = []
    for seq in range(count):
        status, kind, message = (statuses or {}).get(seq, ("succeeded", None, None))
        key = f"seeded/{seq:05d}.png"
        if status == "succeeded":
            storage.put(key, png((seq % 256, seq // 256 % 256, 120), size), "image/png")
        rows.append(
            {
                "id": new_id(IdKind.item), "batch_id": batch_id, "seq": seq,
                "key": f"SKU-{seq:05d}", "variant": 1, "row_label": f"row {seq + 1}",
                "prompt": prompt.format(n=seq), "refs": [], "aspect_ratio": "4:5",
                "image_size": None, "fingerprint": f"{seq:064x}", "output_key": key,
                "status": status, "attempts": 1, "no_image_count": 0, "estimate_micros": 0,
                "cost_micros": 39_000, "reused_from": None, "content_type": "image/png",
                "error_kind": kind, "error_message": message, "created_at": now,
                "updated_at": now, "finished_at": now,
            }
        )  # fmt: skip
    item_queries.bulk_insert(session=session, rows=rows)
    session.flush()
    return Seeded(batch_id, [r["id"] for r in rows])
