"""Links the API hands out: a request's own URLs, and image URLs signed at read time.

On S3 storage an image URL is the store's presigned URL. On a local folder it is this API's
``/v1/files/<key>?expires=..&sig=..``: an HMAC of the key and the expiry with the file secret
(``STENCIL_API_FILES_SECRET``, or a random one kept in the data dir and shared by every API
process on the machine).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request

from stencil.settings import Settings
from stencil.signing import file_signature
from stencil.storage.base import Storage
from stencil.storage.local import LocalStorage

SECRET_FILE = "api-files.secret"  # noqa: S105  (a file name)


def files_secret(settings: Settings) -> bytes:
    """The key of file links: the setting, else a secret file made once in the data dir."""
    if settings.api_files_secret is not None:
        return settings.api_files_secret.get_secret_value().encode()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = (settings.data_dir / SECRET_FILE).resolve()
    if not path.exists():
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another API process made it first
            os.link(tmp, path)
        tmp.unlink()
    return Path(path).read_text().strip().encode()


@dataclass(frozen=True)
class Links:
    """Builds the URLs of one answer."""

    base: str  # e.g. http://127.0.0.1:8000 (no trailing slash)
    storage: Storage
    secret: bytes
    ttl_s: int

    @classmethod
    def of(cls, request: Request) -> Links:
        state = request.app.state
        settings: Settings = state.settings
        base = settings.api_public_url or str(request.base_url)
        return cls(base.rstrip("/"), state.storage, state.files_secret, settings.url_ttl_s)

    def request_urls(self, request_id: str) -> dict[str, str]:
        own = f"{self.base}/v1/requests/{request_id}"
        return {
            "status_url": own,
            "response_url": f"{own}/items",
            "cancel_url": f"{own}/cancel",
        }

    def file_url(self, key: str) -> str:
        expires = int(time.time()) + self.ttl_s
        query = urlencode({"expires": expires, "sig": file_signature(self.secret, key, expires)})
        return f"{self.base}/v1/files/{quote(key)}?{query}"

    def signed_item(self, view: dict[str, Any]) -> dict[str, Any]:
        """An item view whose image URLs a client can fetch (local storage: our file links)."""
        if isinstance(self.storage, LocalStorage) and view.get("storage_key"):
            for image in view["images"]:
                image["url"] = self.file_url(view["storage_key"])
        return view
