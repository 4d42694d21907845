"""Submits per API key per minute (``STENCIL_API_SUBMITS_PER_MINUTE``, or the key's own limit).

A fixed one-minute window counted in the key's row by one conditional UPDATE, so the limit holds
across every API process. Polls are not limited: they are cheap reads.
"""

from __future__ import annotations

import math
import time

from api.auth import Caller
from api.problems import ApiProblem
from models.db import session_scope
from models.queries import tenants as tenant_queries
from stencil.settings import Settings


def take_submit(caller: Caller, settings: Settings) -> None:
    """Count one submit for the caller's key; 429 with Retry-After when its minute is full."""
    limit = caller.submits_per_minute or settings.api_submits_per_minute
    now = time.time()
    minute = int(now // 60)
    with session_scope() as session:
        allowed = tenant_queries.take_submit(
            session=session, key_id=caller.key_id, minute=minute, limit=limit
        )
    if not allowed:
        wait = max(1, math.ceil((minute + 1) * 60 - now))
        raise ApiProblem(
            429,
            f"this API key may submit {limit} requests a minute; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
