"""`stencil serve`: uvicorn running the app factory; on the embedded default (no broker
configured) also a scheduler thread and a worker process, so submitted requests run."""

from __future__ import annotations

from models.db import get_engine
from models.schema import ensure_schema
from stencil.settings import get_settings


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    run_here: bool | None,
    concurrency: int,
    log_level: str,
    access_log: bool,
) -> None:
    import logging

    import uvicorn

    from stencil.runner import LocalRun

    settings = get_settings()
    ensure_schema(get_engine())
    local = None
    if settings.embedded_broker if run_here is None else run_here:
        log_path = (settings.data_dir / "logs" / "serve-worker.log").resolve()
        local = LocalRun(settings, concurrency=concurrency, log_path=log_path)
        logging.getLogger("kombu").setLevel(logging.ERROR)  # the filesystem transport's chatter
        local.start()
    try:
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            proxy_headers=False,
        )
    finally:
        if local is not None:
            local.stop()
