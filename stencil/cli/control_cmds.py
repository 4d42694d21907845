"""Control commands: cancel, pause, resume, retry."""

from __future__ import annotations

from dataclasses import asdict

import typer

from models.db import session_scope
from scheduler import control
from stencil.cli.common import ready
from stencil.cli.output import console, print_json

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _show(result: control.ControlResult, as_json: bool) -> None:
    if as_json:
        print_json(asdict(result))
    else:
        console.print(
            f"{result.action} {result.request_id}: {result.changed} items changed; "
            f"batch is {result.status}",
            markup=False,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    @app.command("cancel")
    def cancel_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Cancel a batch or item: queued work ends at once, in-flight calls finish and are kept."""
        ready()
        with session_scope() as session:
            _show(control.cancel(session=session, request_id=request_id), as_json)

    @app.command("pause")
    def pause_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Stop dispatching a batch; in-flight calls finish."""
        ready()
        with session_scope() as session:
            _show(control.pause(session=session, request_id=request_id), as_json)

    @app.command("resume")
    def resume_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Resume a paused batch, or one stopped by refused credentials."""
        ready()
        with session_scope() as session:
            _show(control.resume(session=session, request_id=request_id), as_json)

    @app.command("retry")
    def retry_cmd(
        request_id: str,
        failed: bool = typer.Option(False, "--failed", help="Retry failed items."),
        blocked: bool = typer.Option(False, "--blocked", help="Retry safety-blocked items."),
        no_image: bool = typer.Option(
            False, "--no-image", help="Retry items answered without image."
        ),
        rejected: bool = typer.Option(
            False, "--rejected", help="Regenerate items a reviewer rejected."
        ),
        as_json: bool = JSON_OPT,
    ) -> None:
        """Requeue ended items as new attempts (all unsuccessful ones when no kind is given)."""
        kinds = [
            k for k, on in (("failed", failed), ("blocked", blocked), ("no_image", no_image)) if on
        ]
        ready()
        with session_scope() as session:
            _show(
                control.retry(
                    session=session, request_id=request_id, kinds=kinds, rejected=rejected
                ),
                as_json,
            )
