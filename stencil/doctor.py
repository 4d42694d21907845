"""`stencil doctor`: each part of this configuration checked, one line each, OK or what to do.

Checks, in order (a part that cannot be reached skips the checks that need it):
settings (secrets masked), database (reachable, migrated to head), broker (Redis ping or the
filesystem folder), storage (a small object written, read back and removed), credentials (a
call that costs nothing: get the model), model (in the price table), workers and scheduler
(recent heartbeats), clock (this host against the database). ``quick`` stops after the broker
(no storage probe, no provider call), for container health checks. Like every command, the
doctor migrates an embedded SQLite file that is behind; a server database is only checked.

Status words: ``ok``; ``warn`` (worth knowing, not wrong: no worker on the embedded default,
where `stencil run` starts its own); ``fail`` (something to fix; the command exits 1); ``skip``.
Every detail passes through a redactor holding this configuration's secrets.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stencil.errors import StencilError
from stencil.masking import mask_url, redactor
from stencil.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
MAX_SKEW_S = 2.0  # leases and heartbeats compare clocks of different hosts
PROVIDER_TIMEOUT_S = 15.0
PROBE_PREFIX = "_stencil_doctor"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def render_line(check: Check) -> str:
    """``OK    database     sqlite:///... at head 0003`` (and ``-> what to do`` when wrong)."""
    line = f"{check.status.upper():<5} {check.name:<12} {check.detail}"
    return f"{line} -> {check.fix}" if check.fix else line


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


# ---- the checks ---------------------------------------------------------------------------
def check_settings(settings: Settings) -> Check:
    """What is in effect (the defaults included), with secrets masked."""
    parts = [
        f"provider={settings.provider}",
        f"model={settings.model}",
        f"data_dir={settings.data_dir.resolve()}",
        f"database={mask_url(settings.resolved_database_url)}",
        "broker=" + (mask_url(settings.broker_url) if settings.broker_url else "filesystem"),
        f"storage={mask_url(settings.resolved_storage_url)}",
    ]
    if settings.s3_endpoint_url:
        parts.append(f"s3_endpoint={mask_url(settings.s3_endpoint_url)}")
    if settings.provider == "vertex":
        parts.append(f"vertex_project={settings.vertex_project or '-'}")
        parts.append(f"vertex_location={settings.vertex_location}")
        if settings.vertex_base_url:
            parts.append(f"vertex_base_url={mask_url(settings.vertex_base_url)}")
    for name in ("vertex_access_token", "vertex_api_key", "gemini_api_key"):
        if getattr(settings, name) is not None:
            parts.append(f"{name}=***")
    return Check("settings", OK, " ".join(parts))


def open_database(settings: Settings) -> tuple[Check, Engine | None]:
    """Reachable and migrated to head (the embedded SQLite file is migrated, as on any use)."""
    from models.db import probe_engine
    from models.schema import ensure_schema, head_revision, stored_revision

    where = mask_url(settings.resolved_database_url)
    try:
        engine = probe_engine(settings)
        with engine.connect():
            pass
    except Exception as exc:
        fix = "check STENCIL_DATABASE_URL and that the database server is running"
        return Check("database", FAIL, f"cannot connect to {where}: {_first_line(exc)}", fix), None
    head, stored = head_revision(), stored_revision(engine)
    if stored != head and engine.dialect.name == "sqlite":
        ensure_schema(engine)
        stored = stored_revision(engine)
    if stored is None:
        fix = "run `stencil db upgrade` (or the migrate service)"
        return Check("database", FAIL, f"{where} reachable but has no Stencil schema", fix), engine
    if stored != head:
        detail = f"{where} is at revision {stored}, the code needs {head}"
        return Check("database", FAIL, detail, "run `stencil db upgrade`"), engine
    return Check("database", OK, f"{where} reachable, schema at head ({head})"), engine


def check_broker(settings: Settings) -> Check:
    """Redis answers a ping; the filesystem broker's folders exist and are writable."""
    if settings.embedded_broker:
        try:
            settings.ensure_dirs()
        except OSError as exc:
            return Check("broker", FAIL, f"cannot create {settings.broker_dir}: {exc}")
        folders = [settings.broker_dir / "in", settings.broker_dir / "processed"]
        unwritable = [str(f) for f in folders if not os.access(f, os.W_OK | os.X_OK)]
        if unwritable:
            fix = "make the data dir writable by this user, or set STENCIL_DATA_DIR"
            return Check("broker", FAIL, f"not writable: {', '.join(unwritable)}", fix)
        return Check("broker", OK, f"filesystem broker folder {settings.broker_dir} writable")
    url = str(settings.broker_url)
    where = mask_url(url)
    fix = "check STENCIL_BROKER_URL and that the broker is running"
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu.connection import Connection

            with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
                conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return Check("broker", FAIL, f"cannot reach {where}: {_first_line(exc)}", fix)
    return Check("broker", OK, f"{where} answers")


def check_storage(settings: Settings) -> Check:
    """A small object written, read back and removed."""
    from stencil.storage import open_storage

    key = f"{PROBE_PREFIX}/{uuid.uuid4().hex}.txt"
    data = f"stencil doctor {time.time()}".encode()
    fix = "check STENCIL_STORAGE_URL (the folder or bucket must exist and be writable)"
    try:
        storage = open_storage(settings)
        where = storage.describe()
        storage.put(key, data, "text/plain")
        if storage.get(key) != data:
            return Check("storage", FAIL, f"{where}: the probe object read back differs", fix)
    except StencilError as exc:
        return Check("storage", FAIL, (str(exc).strip().splitlines() or ["?"])[0][:400], fix)
    try:
        remove_probe(storage, key)
    except Exception as exc:
        detail = f"{where}: written and read back, but the probe {key} was not removed"
        return Check("storage", WARN, f"{detail}: {_first_line(exc)}", "delete it by hand")
    return Check("storage", OK, f"{where}: a probe object written, read back and removed")


def remove_probe(storage: Any, key: str) -> None:
    """Delete the doctor's own probe object (stores have no delete: images are never removed)."""
    from stencil.storage.local import LocalStorage
    from stencil.storage.s3 import S3Storage

    if isinstance(storage, LocalStorage):
        path = storage.path_for(key)
        path.unlink()
        path.parent.rmdir()
    elif isinstance(storage, S3Storage):
        storage.client.delete_object(Bucket=storage.bucket, Key=storage.object_key(key))


def check_credentials(settings: Settings) -> Check:
    """The provider accepts the credentials: get the model (free; no image is made)."""
    if settings.provider == "preview":
        return Check("credentials", OK, "preview provider: offline, needs no credentials")
    from google.genai import errors as genai_errors

    from worker.providers.genai import gemini_factory, vertex_factory

    quick = settings.model_copy(
        update={"request_timeout_s": min(settings.request_timeout_s, PROVIDER_TIMEOUT_S)}
    )
    named = (
        "STENCIL_GEMINI_API_KEY"
        if settings.provider == "gemini"
        else (
            "STENCIL_VERTEX_ACCESS_TOKEN, STENCIL_VERTEX_API_KEY or Application Default Credentials"
        )
    )
    try:
        factory = gemini_factory(quick) if settings.provider == "gemini" else vertex_factory(quick)
        client = factory()  # held: a client that is collected closes its connections
        try:
            client.models.get(model=settings.model)
        finally:
            client.close()
    except StencilError as exc:
        return Check("credentials", FAIL, str(exc))
    except genai_errors.APIError as exc:
        code = exc.code
        if code in (401, 403) or "API_KEY_INVALID" in str(exc) or "API key not valid" in str(exc):
            detail = f"{settings.provider} refused the credentials (HTTP {code} {exc.status})"
            return Check("credentials", FAIL, detail, f"check {named}")
        if code == 404:
            detail = f"credentials accepted, but {settings.provider} does not know {settings.model}"
            return Check("credentials", FAIL, detail, "set STENCIL_MODEL to a current model id")
        detail = f"{settings.provider} answered HTTP {code} {exc.status}: {_first_line(exc)}"
        return Check("credentials", FAIL, detail, "try again; if it stays, check the endpoint")
    except Exception as exc:
        detail = f"cannot reach {settings.provider}: {_first_line(exc)}"
        return Check("credentials", FAIL, detail, "check the network or STENCIL_*_BASE_URL")
    return Check("credentials", OK, f"{settings.provider} accepted them (got {settings.model})")


def check_model(settings: Settings) -> Check:
    from stencil.catalog import MODELS

    spec = MODELS.get(settings.model)
    if spec is None:
        detail = f"{settings.model} is not in the price table (stencil/catalog.py)"
        return Check("model", FAIL, detail, f"set STENCIL_MODEL to one of {', '.join(MODELS)}")
    price = f"${spec.input_usd_per_m:g} in / ${spec.output_usd_per_m:g} out per 1M tokens"
    return Check("model", OK, f"{settings.model} is priced: {price}")


def check_processes(settings: Settings, engine: Engine) -> list[Check]:
    """Workers and scheduler with a heartbeat in the last ``ALIVE_WITHIN_S`` seconds."""
    from models.db import session_scope
    from models.liveness import ALIVE_WITHIN_S
    from models.queries import heartbeats as heartbeat_queries

    with session_scope(engine) as session:
        now = heartbeat_queries.database_now(session=session)
        rows = heartbeat_queries.list_heartbeats(session=session)
    embedded = engine.dialect.name == "sqlite" and settings.embedded_broker
    checks = []
    for role, start in (("worker", "stencil worker"), ("scheduler", "stencil scheduler")):
        mine = [r for r in rows if r.role == role]
        alive = [r for r in mine if (now - r.beat_at).total_seconds() <= ALIVE_WITHIN_S]
        name = f"{role}s" if role == "worker" else role
        if alive:
            where = ", ".join(f"{r.host}:{r.pid}" for r in alive[:5])
            more = f" and {len(alive) - 5} more" if len(alive) > 5 else ""
            checks.append(Check(name, OK, f"{len(alive)} alive ({where}{more})"))
            continue
        last = f"; last seen {_ago(now, mine[0].beat_at)} on {mine[0].host}" if mine else ""
        if embedded:
            detail = f"none running{last} (`stencil run` starts its own)"
            checks.append(Check(name, WARN, detail, f"for a standing fleet run `{start}`"))
        else:
            checks.append(Check(name, FAIL, f"none running{last}", f"start `{start}`"))
    return checks


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def check_clock(engine: Engine) -> Check:
    """This host's clock against the database's (leases compare both)."""
    from models.db import session_scope
    from models.queries.heartbeats import database_now

    if engine.dialect.name == "sqlite":
        return Check("clock", OK, "SQLite: the database uses this host's clock")
    before = time.time()
    with session_scope(engine) as session:
        db_now = database_now(session=session).timestamp()
    after = time.time()
    return judge_skew(db_now - (before + after) / 2, uncertainty_s=(after - before) / 2)


def judge_skew(skew_s: float, *, uncertainty_s: float = 0.0) -> Check:
    """OK within ``MAX_SKEW_S``; otherwise say which clock is ahead."""
    detail = (
        f"this host is {abs(skew_s):.2f} s {'behind' if skew_s > 0 else 'ahead of'} the database"
    )
    detail += f" (+/- {uncertainty_s:.2f} s)"
    if abs(skew_s) - uncertainty_s <= MAX_SKEW_S:
        return Check("clock", OK, detail)
    return Check("clock", FAIL, detail, "synchronise the clocks (NTP); leases assume they agree")


# ---- all of them --------------------------------------------------------------------------
def run_checks(*, quick: bool = False, settings: Settings | None = None) -> Report:
    report = Report()
    try:
        settings = settings or get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"STENCIL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        report.checks.append(Check("settings", FAIL, problems, "correct these variables"))
        return report
    redact = redactor(settings)

    def add(*checks: Check) -> None:
        for c in checks:
            report.checks.append(Check(c.name, c.status, redact(c.detail), redact(c.fix)))

    add(check_settings(settings))
    database, engine = open_database(settings)
    add(database, check_broker(settings))
    try:
        if quick:
            return report
        add(check_storage(settings), check_credentials(settings), check_model(settings))
        if engine is None:
            skipped = "skipped: the database cannot be reached"
            add(*(Check(n, SKIP, skipped) for n in ("workers", "scheduler", "clock")))
            return report
        if database.status == FAIL:
            skipped = "skipped: the schema is not current"
            add(*(Check(n, SKIP, skipped) for n in ("workers", "scheduler")))
        else:
            add(*check_processes(settings, engine))
        add(check_clock(engine))
    finally:
        if engine is not None:
            engine.dispose()
    return report
