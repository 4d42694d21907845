"""Long-running processes and maintenance: worker, scheduler, db upgrade."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Apply every migration to the configured database."""
        from models.db import get_engine
        from models.migrate import upgrade
        from stencil.cli.output import console

        upgrade(get_engine())
        console.print("database is at the latest schema", markup=False)

    @app.command("worker")
    def worker_cmd(
        concurrency: int = typer.Option(
            16,
            "--concurrency",
            envvar="STENCIL_WORKER_CONCURRENCY",
            help="Calls at once in this process (threads).",
        ),
        loglevel: str = typer.Option("WARNING", "--loglevel", envvar="STENCIL_LOGLEVEL"),
    ) -> None:
        """Run a Celery worker (threads pool) that executes items."""
        import logging

        from stencil.cli.common import ready

        ready()
        logging.getLogger("kombu.connection").setLevel(
            logging.ERROR
        )  # filesystem transport chatter
        import worker.heartbeat  # beats while the worker runs (stencil doctor)
        import worker.tasks  # noqa: F401  registers the task
        from worker.app import QUEUE
        from worker.app import app as celery_app

        celery_app.worker_main(
            [
                "--quiet",
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--loglevel={loglevel}",
                "-Q",
                QUEUE,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ]
        )

    @app.command("scheduler")
    def scheduler_cmd() -> None:
        """Run the dispatch loop and the sweeper until interrupted."""
        import signal
        import threading

        from stencil.cli.common import ready
        from stencil.cli.output import console
        from stencil.settings import get_settings

        settings = ready()
        from scheduler.loop import run_scheduler
        from worker.app import send_items

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        console.print(
            f"scheduler running (window starts at {get_settings().window_initial})", markup=False
        )
        run_scheduler(settings=settings, send=send_items, stop=stop)
