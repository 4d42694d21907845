"""`stencil submit` and `stencil run`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from scheduler.manifest import SubmitOptions
    from scheduler.submit import Submission

MANIFEST = typer.Argument(..., exists=False, help="A YAML manifest or a CSV file.")


def _options(
    name: str | None,
    model: str | None,
    provider: str | None,
    budget: float | None,
    output: str | None,
    priority: int | None,
) -> SubmitOptions:
    from scheduler.manifest import SubmitOptions

    return SubmitOptions(
        name=name,
        model=model,
        provider=provider,
        budget_usd=budget,
        output=output,
        priority=priority,
    )


def _summary(sub: Submission) -> dict[str, Any]:

    return {
        "request_id": None if sub.dry_run else sub.batch_id,
        "dry_run": sub.dry_run,
        **sub.summary(),
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
    from scheduler.submit import submit
    from stencil.cli.common import ready
    from stencil.cli.output import console, print_json, say

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
        say(f"warning: {warning}", err=True)
    if dry_run:
        console.print(
            f"dry run: {sub.items} items ({sub.reused} reused), "
            f"estimated ${summary['estimated_cost_usd']:.4f}; nothing written",
            markup=False,
        )
        for sample in sub.samples:
            prompt = sample["prompt"].replace("\n", "\n    ")
            say(f"  {sample['key']} #{sample['variant']} -> {sample['output']}\n    {prompt}")
        return
    console.print(sub.batch_id, markup=False, highlight=False)


def run_cmd(
    target: str = typer.Argument(
        ...,
        metavar="MANIFEST|BATCH_ID",
        help="A YAML manifest or a CSV file, or a batch id (b_...) to continue.",
    ),
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
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the worker's and the libraries' log lines."
    ),
) -> None:
    """Submit (or continue a batch), run a scheduler and a worker until it is done, summarise.

    Ctrl-C, SIGTERM or SIGHUP pause the batch and stop the worker warm (calls in flight finish
    and are kept); `stencil run b_...` continues it.
    """
    from scheduler.submit import submit
    from stencil.catalog import micros_to_usd
    from stencil.cli.common import ready, storage_for
    from stencil.cli.run_session import run

    settings = ready()

    def submit_manifest() -> tuple[str, str]:
        sub = submit(
            Path(target),
            options=_options(name, model, provider, budget, output, priority),
            settings=settings,
            force=force,
        )
        header = (
            f"batch {sub.batch_id}: {sub.items} items ({sub.reused} reused), "
            f"estimated ${micros_to_usd(sub.estimated_micros):.4f}"
        )
        return sub.batch_id, header

    code = run(
        target,
        settings=settings,
        storage=storage_for(settings),
        submit_manifest=submit_manifest,
        concurrency=concurrency,
        as_json=as_json,
        verbose=verbose,
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit_cmd)
    app.command("run")(run_cmd)
