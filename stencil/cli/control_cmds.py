"""Control commands: cancel, pause, resume, retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from scheduler import control
    from stencil.settings import Settings

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _show(result: control.ControlResult, as_json: bool) -> None:
    from dataclasses import asdict

    from stencil.cli.output import console, print_json

    if as_json:
        print_json(asdict(result))
    else:
        console.print(
            f"{result.action} {result.request_id}: {result.changed} items changed; "
            f"batch is {result.status}",
            markup=False,
            highlight=False,
        )


def _as_dict(result: control.ControlResult) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(result)


def _run_command(result: control.ControlResult) -> str:
    return f"stencil run {result.request_id}"


def _who_runs_it(result: control.ControlResult, settings: Settings) -> str | None:
    """For a batch left running by a resume: who runs it, when the status alone would mislead."""
    from stencil.cli.drivers import continue_hint

    if result.status != "running":
        return None
    return continue_hint(result.request_id, settings, changed=bool(result.changed))


def register(app: typer.Typer) -> None:
    @app.command("cancel")
    def cancel_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Cancel a batch or item: queued work ends at once, in-flight calls finish and are kept."""
        from models.db import session_scope
        from scheduler import control
        from stencil.cli.common import ready

        ready()
        with session_scope() as session:
            _show(control.cancel(session=session, request_id=request_id), as_json)

    @app.command("pause")
    def pause_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Stop dispatching a batch; in-flight calls finish."""
        from models.db import session_scope
        from scheduler import control
        from stencil.cli.common import ready

        ready()
        with session_scope() as session:
            _show(control.pause(session=session, request_id=request_id), as_json)

    @app.command("resume")
    def resume_cmd(request_id: str, as_json: bool = JSON_OPT) -> None:
        """Resume a paused batch, or one stopped by refused credentials."""
        from models.db import session_scope
        from scheduler import control
        from stencil.cli.common import ready
        from stencil.cli.output import console, print_json

        settings = ready()
        with session_scope() as session:
            result = control.resume(session=session, request_id=request_id)
        hint = _who_runs_it(result, settings)
        if hint is None:
            _show(result, as_json)
        elif as_json:
            print_json({**_as_dict(result), "hint": hint, "continue_with": _run_command(result)})
        else:
            console.print(f"resume {result.request_id}: {hint}", markup=False, highlight=False)

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
        qa_failed: bool = typer.Option(
            False, "--qa-failed", help="Regenerate items that failed their checks."
        ),
        as_json: bool = JSON_OPT,
    ) -> None:
        """Requeue ended items as new attempts (all unsuccessful ones when no kind is given)."""
        from models.db import session_scope
        from scheduler import control
        from stencil.cli.common import ready

        kinds = [
            k for k, on in (("failed", failed), ("blocked", blocked), ("no_image", no_image)) if on
        ]
        settings = ready()
        with session_scope() as session:
            result = control.retry(
                session=session,
                request_id=request_id,
                kinds=kinds,
                rejected=rejected,
                qa_failed=qa_failed,
            )
        _show(result, as_json)
        if result.changed and not as_json and result.request_id.startswith("b_"):
            from stencil.cli.drivers import Driver, driver_of
            from stencil.cli.output import console

            if driver_of(result.request_id, settings) is Driver.nothing:
                console.print(f"continue with: {_run_command(result)}", markup=False)
