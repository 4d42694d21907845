"""Image stores: a local folder or any S3-compatible endpoint."""

from __future__ import annotations

from stencil.settings import Settings
from stencil.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """The store named by ``STENCIL_STORAGE_URL`` (a folder by default)."""
    url = settings.resolved_storage_url
    if url.startswith("s3://"):
        from stencil.storage.s3 import S3Storage

        return S3Storage.from_url(
            url,
            endpoint_url=settings.s3_endpoint_url,
            instance_metadata=settings.s3_instance_metadata,
        )
    from stencil.storage.local import LocalStorage

    return LocalStorage(url)


__all__ = ["Storage", "open_storage"]
