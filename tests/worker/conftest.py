"""An embedded Stencil (SQLite, local storage) with one submitted batch, driven in-process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models.db import get_engine
from models.schema import ensure_schema
from scheduler.dispatch import dispatch_tick
from scheduler.manifest import SubmitOptions
from scheduler.submit import submit
from stencil.settings import Settings, get_settings
from stencil.storage import open_storage
from tests.fleet import write_manifest
from worker.execute import WorkerContext
from worker.leases import LeaseKeeper
from worker.providers.base import ImageRequest, ImageResult
from worker.providers.preview import PreviewProvider
from worker.refs import RefCache


class GatedProvider:
    """The provider boundary, held open until the test releases it (a call in flight)."""

    name = "preview"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30)
        return PreviewProvider().generate(request)


@dataclass
class Embedded:
    settings: Settings
    batch_id: str
    sent: list[str] = field(default_factory=list)

    def dispatch(self) -> list[str]:
        before = len(self.sent)
        dispatch_tick(settings=self.settings, send=self.sent.extend)
        return self.sent[before:]

    def context(
        self, provider: object | None = None, *, lease_s: float | None = None
    ) -> WorkerContext:
        providers = {"preview": provider or PreviewProvider()}
        return WorkerContext(
            settings=self.settings,
            storage=open_storage(self.settings),
            providers=providers,  # type: ignore[arg-type]
            refs=RefCache(),
            leases=LeaseKeeper(lease_s or self.settings.lease_s),
        )


@pytest.fixture
def embedded(
    stencil_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Embedded]:
    monkeypatch.setenv("STENCIL_WINDOW_INITIAL", "2")
    monkeypatch.setenv("STENCIL_BACKOFF_BASE_S", "0")  # retries are due at once
    get_settings.cache_clear()
    settings = get_settings()
    ensure_schema(get_engine())
    rows = [{"sku": f"s{i}", "prompt": f"photo {i}"} for i in range(3)]
    manifest = write_manifest(tmp_path / "m", rows)
    sub = submit(manifest, options=SubmitOptions(), settings=settings)
    yield Embedded(settings=settings, batch_id=sub.batch_id)
