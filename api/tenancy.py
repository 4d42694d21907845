"""A caller sees only its tenant's requests: any other id answers 404, exactly like an id that
does not exist (batches from the CLI have no tenant and are never seen over HTTP)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth import Caller
from api.problems import not_found
from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.tables import Batch, Item
from stencil.ids import IdKind, kind_of

MAX_ID = 64


def owned_batch(session: Session, caller: Caller, request_id: str) -> Batch:
    if len(request_id) > MAX_ID or kind_of(request_id) is not IdKind.batch:
        raise not_found(request_id)
    batch = batch_queries.get_batch(session=session, batch_id=request_id)
    if batch is None or batch.tenant_id != caller.tenant_id:
        raise not_found(request_id)
    return batch


def owned_item(session: Session, caller: Caller, item_id: str) -> tuple[Item, Batch]:
    if len(item_id) > MAX_ID or kind_of(item_id) is not IdKind.item:
        raise not_found(item_id)
    item = item_queries.get_item(session=session, item_id=item_id)
    if item is None:
        raise not_found(item_id)
    batch = batch_queries.get_batch(session=session, batch_id=item.batch_id)
    if batch is None or batch.tenant_id != caller.tenant_id:
        raise not_found(item_id)
    return item, batch


def owned_batch_of(session: Session, caller: Caller, request_id: str) -> Batch:
    """The batch of a batch id or of an item id (controls act on either)."""
    if kind_of(request_id) is IdKind.item:
        return owned_item(session, caller, request_id)[1]
    return owned_batch(session, caller, request_id)
