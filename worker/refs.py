"""Reference images for a call: read from storage once per process, then served from memory.

References are content-addressed (``_refs/<sha256>.<ext>``): bytes read from the store are
checked against their digest before they are cached or sent, so an object replaced in the store
(by hand, a bug or a hostile output template) is never sent to the model.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from stencil.errors import StorageRefused
from stencil.storage.base import Storage
from worker.providers.base import RefImage

CACHE_BYTES = 256 * 1024 * 1024


class ReferenceMismatch(StorageRefused):
    """A reference image in the store does not match its digest; it is not sent."""


class RefCache:
    """A bounded, thread-safe cache of reference image bytes by digest."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._max = max_bytes
        self._size = 0
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def load(self, refs: Sequence[dict[str, Any]], storage: Storage) -> tuple[RefImage, ...]:
        """RefImages for an item's stored refs (``{"digest","mime","key"|"uri"}``), in order."""
        out = []
        for ref in refs:
            if ref.get("uri"):
                out.append(RefImage(digest=ref["digest"], mime=ref["mime"], uri=ref["uri"]))
            else:
                data = self._bytes(ref["digest"], ref["key"], storage)
                out.append(RefImage(digest=ref["digest"], mime=ref["mime"], data=data))
        return tuple(out)

    def _bytes(self, digest: str, key: str, storage: Storage) -> bytes:
        with self._lock:
            if digest in self._data:
                self._data.move_to_end(digest)
                return self._data[digest]
        data = storage.get(key)
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            raise ReferenceMismatch(
                f"reference image {key!r} in the store does not match its digest "
                f"(sha256 {found[:12]}..., expected {digest[:12]}...): it was changed after "
                "submit and is not sent; submitting the manifest again restores it"
            )
        with self._lock:
            self.loads += 1
            if digest not in self._data:
                self._data[digest] = data
                self._size += len(data)
                while self._size > self._max and len(self._data) > 1:
                    _, dropped = self._data.popitem(last=False)
                    self._size -= len(dropped)
        return data
