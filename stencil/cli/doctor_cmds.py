"""`stencil doctor`: is every part of this configuration ready? One line per check."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        quick: bool = typer.Option(
            False,
            "--quick",
            help="Only settings, database and broker (no storage probe, no provider call).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check settings, database, broker, storage, credentials, model, processes and clock."""
        from stencil.cli.output import print_json
        from stencil.doctor import render_line, run_checks

        report = run_checks(quick=quick)
        if as_json:
            print_json(report.as_json())
        else:
            for check in report.checks:
                typer.echo(render_line(check))
        raise typer.Exit(0 if report.ok else 1)
