"""Review commands: gallery (an HTML contact sheet per batch) and review import."""

from __future__ import annotations

from pathlib import Path

import typer

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def register(app: typer.Typer) -> None:
    review = typer.Typer(help="Record a reviewer's marks from a gallery.", no_args_is_help=True)
    app.add_typer(review, name="review")

    @app.command("gallery")
    def gallery_cmd(
        request_id: str = typer.Argument(..., help="A batch id (b_...)."),
        out: Path | None = typer.Option(
            None,
            "-o",
            "--output-file",
            help="Write the page here (default: <data_dir>/galleries/<batch_id>.html).",
        ),
        open_page: bool = typer.Option(False, "--open", help="Open the page in a browser."),
        upload: bool = typer.Option(
            False,
            "--upload",
            envvar="STENCIL_GALLERY_UPLOAD",
            help="Also put the page beside the outputs (S3) and print its signed URL.",
        ),
        as_json: bool = JSON_OPT,
    ) -> None:
        """Write an HTML contact sheet of a batch: thumbnails, reasons, review buttons."""
        import webbrowser

        from models.db import session_scope
        from stencil.cli.common import ready, storage_for
        from stencil.cli.output import console, print_json
        from stencil.errors import InputError
        from stencil.gallery import build_gallery, default_path

        settings = ready()
        storage = storage_for(settings)
        if upload and not settings.resolved_storage_url.startswith("s3://"):
            raise InputError("--upload needs S3 storage (STENCIL_STORAGE_URL=s3://bucket/prefix)")
        with session_scope() as session:
            gallery = build_gallery(
                session=session,
                batch_id=request_id,
                storage=storage,
                out=out or default_path(settings.data_dir, request_id),
                ttl_s=settings.url_ttl_s,
                upload=upload,
            )
        if open_page:
            webbrowser.open(gallery.url or gallery.path.as_uri())
        if as_json:
            print_json(gallery.as_json())
            return
        console.print(str(gallery.path), markup=False, highlight=False, soft_wrap=True)
        if gallery.url:
            console.print(gallery.url, markup=False, highlight=False, soft_wrap=True)

    @review.command("import")
    def import_cmd(
        marks_file: Path = typer.Argument(..., help="A marks file exported from a gallery."),
        as_json: bool = JSON_OPT,
    ) -> None:
        """Record approved/rejected marks on items (all or nothing)."""
        from models.db import session_scope
        from stencil.cli.common import ready
        from stencil.cli.output import console, print_json
        from stencil.review import import_marks, read_marks_file

        parsed = read_marks_file(marks_file)
        ready()
        with session_scope() as session:
            result = import_marks(session=session, marks_file=parsed)
        if as_json:
            print_json(result.as_json())
            return
        console.print(
            f"recorded {result.recorded} marks on {result.batch_id}: {result.approved} approved, "
            f"{result.rejected} rejected",
            markup=False,
            highlight=False,
        )
        if result.rejected:
            console.print(
                f"regenerate the rejects with: stencil retry {result.batch_id} --rejected",
                markup=False,
                highlight=False,
            )
