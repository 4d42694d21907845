"""Items: one image of one row, polled by its own id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.links import Links
from api.presenters import item_answer
from api.schemas import ItemView, problems
from api.tenancy import owned_item
from models.db import session_scope

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.get("/{item_id}", response_model=ItemView, responses=problems(401, 404))
def get_item(request: Request, item_id: str, caller: CallerDep) -> dict[str, Any]:
    """One item: status, images (URLs signed now), cost, attempts, error."""
    with session_scope() as session:
        item, batch = owned_item(session, caller, item_id)
        return item_answer(item, batch, Links.of(request))
