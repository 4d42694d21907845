"""Files on local storage, served through links signed at read time (``/v1/files/<key>``).

No API key is needed (an ``<img>`` cannot send one): the link's HMAC signature and expiry are
the permission. Keys go through the store's own path check, so nothing outside the storage root
is ever served.
"""

from __future__ import annotations

import mimetypes
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from api.problems import ApiProblem
from api.schemas import problems
from stencil.errors import StorageError
from stencil.signing import file_signature_ok
from stencil.storage.local import LocalStorage

router = APIRouter(tags=["files"])
SERVED_AS_IS = {"image/png", "image/jpeg", "image/webp", "application/json"}


@router.get(
    "/v1/files/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}, "application/octet-stream": {}}},
        **problems(403, 404, 422),
    },
)
def get_file(
    request: Request,
    key: str,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    sig: Annotated[str, Query(max_length=100)],
) -> FileResponse:
    """A stored object, while its signed link has not expired."""
    storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        raise ApiProblem(404, "files are served by the store itself (presigned URLs)")
    if not file_signature_ok(request.app.state.files_secret, key, expires, sig, time.time()):
        raise ApiProblem(403, "the link is not valid or has expired; poll again for a fresh one")
    try:
        path = storage.path_for(key)
    except StorageError as exc:
        raise ApiProblem(404, "no such file") from exc
    if not path.is_file():
        raise ApiProblem(404, "no such file")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind not in SERVED_AS_IS:  # a stored page or script is never run from this origin
        kind = "application/octet-stream"
    max_age = max(0, expires - int(time.time()))
    headers = {"Cache-Control": f"private, max-age={max_age}", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=kind, headers=headers)
