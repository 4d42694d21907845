"""Read commands: poll, wait, results, ls, status (each with --json)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

# Heavy imports (SQLAlchemy, Rich tables, storage clients) live inside the commands, so that
# `stencil --help` and each command start fast.

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def poll_cmd(
    request_id: str = typer.Argument(..., help="A batch id (b_...) or an item id (i_...)."),
    items: bool = typer.Option(False, "--items", help="Include every item of a batch."),
    as_json: bool = JSON_OPT,
) -> None:
    """Status, image URLs, cost and errors of a batch or an item."""
    from models.db import session_scope
    from stencil.cli.common import ready, storage_for
    from stencil.cli.output import console, kv_table, print_json, say
    from stencil.views import poll

    settings = ready()
    storage = storage_for(settings)
    with session_scope() as session:
        view = poll(
            session=session,
            request_id=request_id,
            storage=storage,
            ttl_s=settings.url_ttl_s,
            items=items,
        )
    if as_json:
        print_json(view)
        return
    items_view = view.pop("items", None)
    if view.get("kind") == "batch":
        from stencil.cli.summary import poll_fields

        view = poll_fields(view)  # counts as a line, cost, progress and ETA
    console.print(kv_table(view))
    for item in items_view or []:
        url = (
            item["images"][0]["url"] if item["images"] else (item["error"] or {}).get("message", "")
        )
        say(f"{item['request_id']}  {item['key']}#{item['variant']}  {item['status']}  {url}")


def wait_cmd(
    request_id: str = typer.Argument(..., help="A batch id."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Give up after this many seconds."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Show progress until the batch ends; non-zero exit if any item did not succeed."""
    from stencil.cli.common import ready, storage_for
    from stencil.cli.output import console, print_json, say
    from stencil.cli.progress import follow
    from stencil.cli.summary import counts_line

    settings = ready()
    view = follow(
        request_id,
        storage=storage_for(settings),
        ttl_s=settings.url_ttl_s,
        show=not as_json,
        timeout_s=timeout,
    )
    if as_json:
        print_json(view)
    else:
        console.print(
            f"{view['status']}: {counts_line(view['counts'])}  cost ${view['cost_usd']:.4f}",
            markup=False,
            highlight=False,
        )
        if view.get("stop_reason"):
            say(f"stopped: {view['stop_reason']}")
    succeeded = view["counts"].get("succeeded", 0)
    raise typer.Exit(0 if succeeded == view["total"] else 1)


def results_cmd(
    request_id: str = typer.Argument(..., help="A batch id."),
    fmt: str = typer.Option("csv", "--format", help="csv or jsonl."),
    out: Path | None = typer.Option(
        None, "-o", "--output-file", help="Write here instead of stdout."
    ),
) -> None:
    """One line per item: key, request_id, status, storage key, URL, cost, error, checks."""
    from models.db import session_scope
    from stencil.cli.common import ready, storage_for
    from stencil.cli.output import write_csv, write_jsonl
    from stencil.views import result_rows

    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("must be csv or jsonl", param_hint="--format")
    settings = ready()
    storage = storage_for(settings)
    writer = write_csv if fmt == "csv" else write_jsonl
    with session_scope() as session:
        rows = result_rows(
            session=session, batch_id=request_id, storage=storage, ttl_s=settings.url_ttl_s
        )
        if out is None:
            writer(rows, sys.stdout)
        else:
            with out.open("w", newline="", encoding="utf-8") as handle:
                writer(rows, handle)


def ls_cmd(
    limit: int = typer.Option(20, "--limit", help="How many batches, newest first."),
    as_json: bool = JSON_OPT,
) -> None:
    """List recent batches."""
    from rich.table import Table

    from models.db import session_scope
    from models.queries import batches as batch_queries
    from stencil.catalog import micros_to_usd
    from stencil.cli.common import ready
    from stencil.cli.output import cell, console, print_json

    ready()
    with session_scope() as session:
        batches = [
            {
                "request_id": b.id,
                "name": b.name,
                "status": b.status,
                "items": b.item_count,
                "provider": b.provider,
                "model": b.model,
                "cost_usd": micros_to_usd(b.spent_micros),
                "created_at": b.created_at.isoformat(),
            }
            for b in batch_queries.list_batches(session=session, limit=limit)
        ]
    if as_json:
        print_json(batches)
        return
    table = Table()
    for column in ("request_id", "name", "status", "items", "model", "cost_usd", "created_at"):
        table.add_column(column)
    for b in batches:
        table.add_row(
            *(
                cell(b[c])
                for c in (
                    "request_id",
                    "name",
                    "status",
                    "items",
                    "model",
                    "cost_usd",
                    "created_at",
                )
            )
        )
    console.print(table)


def status_cmd(as_json: bool = JSON_OPT) -> None:
    """The fleet: window, in flight, recent 429 share, images per minute."""
    from models.db import session_scope
    from stencil.cli.common import ready
    from stencil.cli.output import console, kv_table, print_json
    from stencil.fleet import fleet_status

    settings = ready()
    with session_scope() as session:
        view = fleet_status(session=session, settings=settings)
    if as_json:
        print_json(view)
    else:
        console.print(kv_table(view))


def register(app: typer.Typer) -> None:
    app.command("poll")(poll_cmd)
    app.command("wait")(wait_cmd)
    app.command("results")(results_cmd)
    app.command("ls")(ls_cmd)
    app.command("status")(status_cmd)
