"""The `stencil` command: thin commands over library functions.

Domain errors print one clear line (or one line per manifest problem) on stderr and exit with
2 for bad input, 1 for other failures; tracebacks only with --debug.

Start-up is kept short (`python -m bench.startup` measures it): the command modules import only
Typer at module level; SQLAlchemy, Alembic, Celery, google-genai, boto3 and Rich tables are
imported inside the commands that use them.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from stencil.cli import (
    control_cmds,
    doctor_cmds,
    gallery_cmds,
    process_cmds,
    read_cmds,
    serve_cmds,
    submit_cmds,
)
from stencil.errors import StencilError

app = typer.Typer(
    name="stencil",
    help="Bulk image generation with Gemini image models: submit a manifest, poll by request id.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
_debug = {"on": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", envvar="STENCIL_DEBUG", help="Show tracebacks."),
) -> None:
    _debug["on"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for module in (
    submit_cmds,
    read_cmds,
    control_cmds,
    process_cmds,
    gallery_cmds,
    doctor_cmds,
    serve_cmds,
):
    module.register(app)


def main() -> None:
    os.environ.setdefault("NO_GCE_CHECK", "true")
    try:
        code = app(standalone_mode=False, prog_name="stencil")
        if isinstance(code, int) and code:
            sys.exit(code)
    except StencilError as exc:
        if _debug["on"]:
            raise
        from stencil.cli.output import print_error

        print_error(exc)  # user data escaped, never read as markup
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        if _debug["on"]:
            raise
        from stencil.cli.output import print_error

        print_error(exc, kind=f"{type(exc).__name__}: ")
        sys.exit(1)


if __name__ == "__main__":
    main()
