"""A submit's body, written to a private folder as the manifest files the CLI would read.

- JSON: the manifest's own fields (the YAML names), ``rows`` as a list of objects, plus optional
  ``webhook_url`` and ``webhook_events``. It becomes ``manifest.yaml`` with its rows in
  ``rows.jsonl``; problems are reported against ``body`` (rows as ``rows[i]``).
- multipart/form-data: a ``manifest`` file (YAML or CSV), an optional rows file, and reference
  images, each saved under its own file name, which the manifest names. Optional fields:
  ``name``, ``model``, ``provider``, ``budget_usd``, ``output``, ``priority`` (the CLI's options),
  ``webhook_url`` and ``webhook_events``.

The folder holds only what was uploaded, and a manifest's paths cannot leave it
(``resolve_inside``), so a submit never reads the server's own files. Each tenant's outputs are
kept under its tenant id (the output template is prefixed with it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request
from starlette.datastructures import UploadFile

from api.problems import ApiProblem
from scheduler.manifest import SubmitOptions
from scheduler.manifest.keys import DEFAULT_OUTPUT
from scheduler.manifest.recipe import MAX_MANIFEST_BYTES
from scheduler.manifest.safe_yaml import load_yaml

MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES = 1000
MAX_DEPTH = 32
MANIFEST_SUFFIXES = (".yaml", ".yml", ".csv")
JSON_MANIFEST = "manifest.yaml"
JSON_ROWS = "rows.jsonl"
OPTION_FIELDS = ("name", "model", "provider", "budget_usd", "output", "priority")
WEBHOOK_FIELDS = ("webhook_url", "webhook_events")
CHUNK = 1024 * 1024


@dataclass
class Upload:
    """A submit's manifest, written to ``folder``, and what came with it."""

    folder: Path
    manifest: Path
    options: SubmitOptions
    digest: str  # what makes two bodies the same (for Idempotency-Key)
    from_json: bool
    webhook_url: str | None = None
    webhook_events: Any = None
    shown_name: str = ""


def bad(
    message: str, *, fld: str | None = None, file: str = "body", row: int | None = None
) -> ApiProblem:
    return ApiProblem(
        422,
        "the request is not valid; nothing was submitted",
        problems=[{"file": file, "row": row, "field": fld, "message": message}],
    )


async def read_upload(request: Request, folder: Path, tenant_id: str) -> Upload:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return await _from_json(request, folder, tenant_id)
    if kind == "multipart/form-data":
        return await _from_form(request, folder, tenant_id)
    raise ApiProblem(415, "send the manifest as application/json or multipart/form-data")


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, refused with 413 past ``cap`` bytes (declared or streamed)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise ApiProblem(413, f"the body is larger than {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiProblem(413, f"the body is larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


async def _from_json(request: Request, folder: Path, tenant_id: str) -> Upload:
    raw = await read_capped(request, MAX_JSON_BYTES)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        raise bad(f"invalid JSON: {getattr(exc, 'msg', None) or exc}", row=line) from exc
    if not isinstance(body, dict):
        raise bad("must be a JSON object with the manifest's fields")
    if _depth(body) > MAX_DEPTH:
        raise bad(f"nests deeper than {MAX_DEPTH} levels")
    hooks = {name: body.pop(name, None) for name in WEBHOOK_FIELDS}
    rows = body.get("rows")
    if isinstance(rows, list):
        with (folder / JSON_ROWS).open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        body["rows"] = JSON_ROWS
    elif rows is not None:
        raise bad("must be a list of objects (one per row)", fld="rows")
    output = body.get("output", DEFAULT_OUTPUT)
    if isinstance(output, str):
        body["output"] = f"{tenant_id}/{output}"
    manifest = folder / JSON_MANIFEST
    manifest.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), "utf-8")
    return Upload(
        folder=folder,
        manifest=manifest,
        options=SubmitOptions(),
        digest=hashlib.sha256(raw).hexdigest(),
        from_json=True,
        webhook_url=hooks["webhook_url"],
        webhook_events=hooks["webhook_events"],
        shown_name="body",
    )


def safe_name(filename: str | None, fld: str) -> str:
    """An uploaded file's name, as the manifest names it; no folders, nothing hidden."""
    name = (filename or "").strip()
    if (
        not name
        or len(name) > 200
        or any(c in name for c in "/\\\x00")
        or name.startswith(".")
        or not name.isprintable()
    ):
        raise bad(f"file name {name[:60]!r} cannot be used: a plain name is needed", fld=fld)
    return name


async def _save(upload: UploadFile, path: Path, fld: str) -> str:
    """Write an uploaded file; returns the SHA-256 of its bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as handle:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise bad(f"is larger than {MAX_FILE_BYTES} bytes", fld=fld)
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


async def _from_form(request: Request, folder: Path, tenant_id: str) -> Upload:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise ApiProblem(411, "a multipart upload needs a Content-Length")
    if int(length) > MAX_UPLOAD_BYTES:
        raise ApiProblem(413, f"the upload is larger than {MAX_UPLOAD_BYTES} bytes")
    form = await request.form(max_files=MAX_FILES, max_fields=100)
    manifest_name: str | None = None
    parts: list[tuple[str, str, str]] = []
    fields: dict[str, Any] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                name = safe_name(value.filename, key)
                path = folder / name
                if path.exists():
                    raise bad(f"two uploaded files are named {name!r}", fld=key)
                parts.append((key, name, await _save(value, path, key)))
                if key == "manifest":
                    if manifest_name is not None:
                        raise bad("send one manifest file", fld="manifest")
                    manifest_name = name
            elif key in OPTION_FIELDS or key in WEBHOOK_FIELDS:
                if key == "webhook_events":
                    fields.setdefault(key, []).extend(
                        e.strip() for e in str(value).split(",") if e.strip()
                    )
                else:
                    fields[key] = str(value)
            else:
                raise bad(
                    f"unknown form field {key[:60]!r}; fields are manifest (a file), reference "
                    f"images and rows files (files), {', '.join(OPTION_FIELDS + WEBHOOK_FIELDS)}",
                    fld=key[:60],
                )
    finally:
        await form.close()
    if manifest_name is None:
        raise bad("a manifest file is required (form field 'manifest')", fld="manifest")
    if not manifest_name.lower().endswith(MANIFEST_SUFFIXES):
        raise bad("a manifest must end in .yaml, .yml or .csv", fld="manifest")
    manifest = folder / manifest_name
    options = _options(fields, manifest, tenant_id)
    described = json.dumps([sorted(parts), sorted((k, str(v)) for k, v in fields.items())])
    return Upload(
        folder=folder,
        manifest=manifest,
        options=options,
        digest=hashlib.sha256(described.encode()).hexdigest(),
        from_json=False,
        webhook_url=fields.get("webhook_url"),
        webhook_events=fields.get("webhook_events"),
        shown_name=manifest_name,
    )


def _options(fields: dict[str, Any], manifest: Path, tenant_id: str) -> SubmitOptions:
    """The CLI's options from form fields; the output template is prefixed with the tenant."""
    budget = priority = None
    if "budget_usd" in fields:
        try:
            budget = float(fields["budget_usd"])
        except ValueError as exc:
            raise bad("must be a number of US dollars", fld="budget_usd") from exc
    if "priority" in fields:
        try:
            priority = int(fields["priority"])
        except ValueError as exc:
            raise bad("must be a whole number from 0 to 9", fld="priority") from exc
    output = fields.get("output") or _manifest_output(manifest)
    return SubmitOptions(
        name=fields.get("name"),
        model=fields.get("model"),
        provider=fields.get("provider"),
        budget_usd=budget,
        output=f"{tenant_id}/{output}" if isinstance(output, str) else None,
        priority=priority,
    )


def _manifest_output(manifest: Path) -> str | None:
    """The output template a YAML manifest names (the default when it names none); None when
    the manifest cannot be read (loading it reports why)."""
    if manifest.suffix.lower() == ".csv":
        return DEFAULT_OUTPUT
    if manifest.stat().st_size > MAX_MANIFEST_BYTES:
        return None  # loading it says it is too big
    try:
        raw = load_yaml(manifest.read_text("utf-8-sig"))
    except (yaml.YAMLError, ValueError, RecursionError, OSError):
        return None
    if not isinstance(raw, dict):
        return None
    output = raw.get("output", DEFAULT_OUTPUT)
    return output if isinstance(output, str) else None
