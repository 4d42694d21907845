"""The spool: paid images that storage would not take, kept on the worker's disk until it does.

One folder per item, two files per attempt, named by the attempt id: ``<attempt>.img`` (the
bytes) and ``<attempt>.json`` (content type, digest and the sidecar to write beside the image),
the second written last as the commit mark. Both are fsynced: each is money already spent. The
spool lives under ``STENCIL_SPOOL_DIR`` (default ``<data dir>/spool``); a fleet with several
worker machines that wants every machine to finish any item points it at a shared volume.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from models.statuses import AttemptState
from worker.providers.base import ImageResult
from worker.sidecar import parse_sidecar

log = logging.getLogger(__name__)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Held:
    """A paid image waiting in the spool for storage."""

    attempt_id: str
    image: bytes
    mime: str
    sidecar: bytes  # as built when the image was paid for (it names that attempt and its cost)

    def result(self) -> ImageResult:
        """The result of storing these bytes: an image at no new cost."""
        body = parse_sidecar(self.sidecar)
        return ImageResult(
            state=AttemptState.succeeded,
            image=self.image,
            mime=self.mime,
            model_version=body.get("model_version"),
            response_id=body.get("response_id"),
            preview=bool(body.get("preview")),
            message=(
                f"stored from the spool: the image of attempt {self.attempt_id} "
                "(paid then); no new call"
            ),
        )


class Spool:
    """Paid images by item and attempt, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, item_id: str) -> Path:
        return self.root / _safe(item_id)

    def has_item(self, item_id: str) -> bool:
        """A cheap look (one stat) before asking the database anything."""
        return self.folder(item_id).is_dir()

    def keep(
        self, *, item_id: str, attempt_id: str, image: bytes, mime: str, sidecar: bytes
    ) -> Path:
        """Write the image, then its meta file; raises OSError when the disk will not take it."""
        folder = self.folder(item_id)
        folder.mkdir(parents=True, exist_ok=True)
        name = _safe(attempt_id)
        _write(folder / f"{name}.img", image)
        meta = {
            "attempt_id": attempt_id,
            "item_id": item_id,
            "mime": mime,
            "sha256": hashlib.sha256(image).hexdigest(),
            "sidecar": base64.b64encode(sidecar).decode("ascii"),
        }
        _write(folder / f"{name}.json", json.dumps(meta).encode())
        _fsync_dir(folder)
        return folder / f"{name}.img"

    def held(self, *, item_id: str, attempt_ids: Iterable[str]) -> Held | None:
        """The first of ``attempt_ids`` whose image is here, whole (its digest checks)."""
        folder = self.folder(item_id)
        for attempt_id in attempt_ids:
            name = _safe(attempt_id)
            try:
                meta = json.loads((folder / f"{name}.json").read_bytes())
                image = (folder / f"{name}.img").read_bytes()
                sidecar = base64.b64decode(meta["sidecar"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if hashlib.sha256(image).hexdigest() != meta.get("sha256"):
                log.warning("spooled image of attempt %s is damaged; not used", attempt_id)
                continue
            return Held(attempt_id=attempt_id, image=image, mime=str(meta["mime"]), sidecar=sidecar)
        return None

    def discard(self, *, item_id: str, attempt_id: str) -> None:
        """Forget an attempt's files once its image is stored and recorded."""
        folder = self.folder(item_id)
        name = _safe(attempt_id)
        for suffix in (".json", ".img"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


def _safe(identifier: str) -> str:
    if not _ID.match(identifier):
        raise ValueError(f"not an id: {identifier!r}")
    return identifier


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
