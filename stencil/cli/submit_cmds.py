"""`stencil submit` and `stencil run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from models.db import session_scope
from models.queries import batches as batch_queries
from scheduler.manifest import SubmitOptions
from scheduler.submit import Submission, submit
from stencil.catalog import micros_to_usd
from stencil.cli.common import ready, storage_for
from stencil.cli.output import console, err_console, print_json, results_table
from stencil.cli.progress import follow
from stencil.runner import scheduler_thread, worker_process
from stencil.views import poll, result_rows

MANIFEST = typer.Argument(..., exists=False, help="A YAML manifest or a CSV file.")


def _options(
    name: str | None,
    model: str | None,
    provider: str | None,
    budget: float | None,
    output: str | None,
    priority: int | None,
) -> SubmitOptions:
    return SubmitOptions(
        name=name,
        model=model,
        provider=provider,
        budget_usd=budget,
        output=output,
        priority=priority,
    )


def _summary(sub: Submission) -> dict[str, Any]:
    plan = sub.plan
    return {
        "request_id": None if sub.dry_run else plan.batch_id,
        "dry_run": sub.dry_run,
        "name": plan.name,
        "provider": plan.provider,
        "model": plan.model,
        "items": sub.items,
        "reused": sub.reused,
        "estimated_cost_usd": micros_to_usd(sub.estimated_micros),
        "estimated_cost_on_model_usd": micros_to_usd(sub.model_estimate_micros),
        "budget_usd": None if plan.budget_micros is None else micros_to_usd(plan.budget_micros),
        "warnings": plan.warnings,
        "samples": sub.samples,
        "preview": plan.provider == "preview",
    }


name_opt = typer.Option(None, "--name", envvar="STENCIL_NAME", help="Batch label (CSV form).")
model_opt = typer.Option(None, "--model", help="Model id (default: STENCIL_MODEL).")
provider_opt = typer.Option(
    None, "--provider", help="preview, vertex or gemini (default: STENCIL_PROVIDER)."
)
budget_opt = typer.Option(
    None, "--budget", envvar="STENCIL_BUDGET_USD", help="Hard cap on spend in USD."
)
output_opt = typer.Option(None, "--output", envvar="STENCIL_OUTPUT", help="Storage key template.")
priority_opt = typer.Option(
    None, "--priority", envvar="STENCIL_PRIORITY", min=0, max=9, help="0-9, higher first."
)
force_opt = typer.Option(False, "--force", help="Regenerate even rows that already succeeded.")
json_opt = typer.Option(False, "--json", help="Print one JSON object.")


def submit_cmd(
    manifest: Path = MANIFEST,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and estimate; write nothing."),
    as_json: bool = json_opt,
    name: str | None = name_opt,
    model: str | None = model_opt,
    provider: str | None = provider_opt,
    budget: float | None = budget_opt,
    output: str | None = output_opt,
    priority: int | None = priority_opt,
    force: bool = force_opt,
) -> None:
    """Submit a manifest; prints the batch request_id and returns at once."""
    settings = ready()
    sub = submit(
        manifest,
        options=_options(name, model, provider, budget, output, priority),
        settings=settings,
        force=force,
        dry_run=dry_run,
    )
    summary = _summary(sub)
    if as_json:
        print_json(summary)
        return
    for warning in sub.plan.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    if dry_run:
        console.print(
            f"dry run: {sub.items} items ({sub.reused} reused), "
            f"estimated ${summary['estimated_cost_usd']:.4f}; nothing written",
            markup=False,
        )
        for sample in sub.samples:
            console.print(
                f"  {sample['key']} #{sample['variant']} -> {sample['output']}\n"
                f"    {sample['prompt']}",
                markup=False,
                highlight=False,
            )
        return
    console.print(sub.batch_id, markup=False, highlight=False)


def run_cmd(
    manifest: Path = MANIFEST,
    concurrency: int = typer.Option(
        8, "--concurrency", envvar="STENCIL_WORKER_CONCURRENCY", help="Worker threads."
    ),
    as_json: bool = json_opt,
    name: str | None = name_opt,
    model: str | None = model_opt,
    provider: str | None = provider_opt,
    budget: float | None = budget_opt,
    output: str | None = output_opt,
    priority: int | None = priority_opt,
    force: bool = force_opt,
) -> None:
    """Submit, run a scheduler and a worker until the batch is done, print the results."""
    settings = ready()
    sub = submit(
        manifest,
        options=_options(name, model, provider, budget, output, priority),
        settings=settings,
        force=force,
    )
    storage = storage_for(settings)
    if not as_json:
        err_console.print(
            f"batch {sub.batch_id}: {sub.items} items ({sub.reused} reused), "
            f"estimated ${micros_to_usd(sub.estimated_micros):.4f}",
            markup=False,
            highlight=False,
        )
    with worker_process(concurrency=concurrency) as worker, scheduler_thread(settings):
        follow(
            sub.batch_id,
            storage=storage,
            ttl_s=settings.url_ttl_s,
            show=not as_json,
            alive=lambda: worker.poll() is None,
        )
    with session_scope() as session:
        batch_queries.close_if_finished(session=session, batch_id=sub.batch_id)
    with session_scope() as session:
        view = poll(
            session=session, request_id=sub.batch_id, storage=storage, ttl_s=settings.url_ttl_s
        )
        rows = list(
            result_rows(
                session=session,
                batch_id=sub.batch_id,
                storage=storage,
                ttl_s=settings.url_ttl_s,
            )
        )
    if as_json:
        print_json({**view, "results": rows})
    else:
        console.print(results_table(rows))
        console.print(
            f"{view['counts']}  total cost ${view['cost_usd']:.4f}  output: {storage.describe()}",
            markup=False,
            highlight=False,
        )
        if view.get("note"):
            console.print(f"note: {view['note']}", markup=False)
    ok = all(r["status"] == "succeeded" for r in rows)
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit_cmd)
    app.command("run")(run_cmd)
