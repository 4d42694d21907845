"""One `stencil run`: submit a manifest (or continue a batch), drive it with a scheduler thread and
a worker process until it ends, then summarise.

Stopping stops spending: on SIGINT, SIGTERM or SIGHUP the batch is paused (so no scheduler
anywhere keeps dispatching it), the scheduler thread stops, and the worker shuts down warm (calls
in flight finish and are recorded; nothing new starts). Then stderr says how far the batch got and
the command that continues it (`stencil run b_...`), and the exit code is 128 + the signal.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from models.db import session_scope
from models.queries import batches as batch_queries
from models.statuses import BatchStatus
from scheduler import control
from stencil import run_lock
from stencil.cli.interrupts import Interrupted, Interrupts
from stencil.cli.output import console, err_console, print_json
from stencil.cli.progress import follow
from stencil.cli.summary import money, run_summary, stopped_lines
from stencil.errors import NotFoundError
from stencil.ids import IdKind, kind_of
from stencil.runner import LocalRun
from stencil.settings import Settings
from stencil.storage.base import Storage
from stencil.terminal import printable
from stencil.views import poll, result_rows

NOISY_LOGGERS = ("kombu", "celery", "amqp")


def is_batch_id(target: str) -> bool:
    """`stencil run b_...` continues a batch (unless a file has that name)."""
    return kind_of(target) is IdKind.batch and not Path(target).exists()


def quiet_third_parties(verbose: bool) -> None:
    """No log lines or warnings from Celery and kombu in a normal run; all of them when verbose."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
        return
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(celery|kombu|amqp)(\..*)?$")


def say(*lines: str) -> None:
    """Lines on stderr; a closed terminal (SIGHUP) must not stop the run from stopping in order."""
    for line in lines:
        try:
            err_console.print(Text(printable(line)), highlight=False, soft_wrap=True)
        except (OSError, ValueError):
            return


def run(
    target: str,
    *,
    settings: Settings,
    storage: Storage,
    submit_manifest: Callable[[], tuple[str, str]],
    concurrency: int,
    as_json: bool,
    verbose: bool,
) -> int:
    """Run a batch to its end; the exit code (0 all succeeded, 1 not, 128+n after signal n).

    ``submit_manifest`` submits the manifest and returns (batch id, a line describing it); it
    is called only when ``target`` is not a batch id.
    """
    quiet_third_parties(verbose)
    started = time.monotonic()
    with Interrupts(raise_now=True) as interrupts:
        batch_id: str | None = None
        try:
            if is_batch_id(target):
                batch_id, header = target, ""
            else:
                batch_id, header = submit_manifest()
            interrupts.raise_now = False
        except Interrupted as exc:
            interrupts.raise_now = False
            if batch_id is None:
                say(f"{exc}: stopped before the batch was submitted; nothing runs")
                return interrupts.exit_code
        with run_lock.hold(settings, batch_id):
            if not header:
                header = _continue(batch_id, settings=settings, storage=storage)
            if not as_json:
                say(header)
            code = _drive(
                batch_id,
                settings=settings,
                storage=storage,
                interrupts=interrupts,
                concurrency=concurrency,
                as_json=as_json,
                verbose=verbose,
                started=started,
            )
    return code


def _continue(batch_id: str, *, settings: Settings, storage: Storage) -> str:
    """Resume a paused or stopped batch; the line that says where it stands."""
    with session_scope() as session:
        batch = batch_queries.get_batch(session=session, batch_id=batch_id)
        if batch is None:
            raise NotFoundError(f"no batch has the request id {batch_id!r}")
        if batch.status in (BatchStatus.paused.value, BatchStatus.stopped.value):
            control.resume(session=session, request_id=batch_id)
    view = _view(batch_id, settings=settings, storage=storage)
    where = f"{view['ended']} of {view['total']} done, {money(view['cost_usd'])} spent"
    if view["status"] in (BatchStatus.done.value, BatchStatus.cancelled.value):
        return f"batch {batch_id} is {view['status']} ({where}); nothing to run"
    return f"batch {batch_id}: continuing, {where}"


def _drive(
    batch_id: str,
    *,
    settings: Settings,
    storage: Storage,
    interrupts: Interrupts,
    concurrency: int,
    as_json: bool,
    verbose: bool,
    started: float,
) -> int:
    view = _view(batch_id, settings=settings, storage=storage)
    if view["status"] in (BatchStatus.done.value, BatchStatus.cancelled.value):
        return _finish(
            batch_id, settings=settings, storage=storage, as_json=as_json, started=started
        )
    log_path = None if verbose else worker_log(settings, batch_id)
    local = LocalRun(
        settings,
        concurrency=concurrency,
        log_path=log_path,
        loglevel="INFO" if verbose else "WARNING",
    )
    if not interrupts.event.is_set():
        local.start()
    try:
        last: dict[str, Any] = {}
        try:
            last = follow(
                batch_id,
                storage=storage,
                ttl_s=settings.url_ttl_s,
                show=not as_json and not interrupts.event.is_set(),
                alive=local.worker_alive,
                stop=interrupts.event,
            )
        except OSError:  # the terminal went away with SIGHUP: stop in order all the same
            if interrupts.signum is None:
                raise
        if interrupts.signum is not None:
            return _stop_on_signal(
                batch_id,
                in_flight=sum(last.get("counts", {}).get(s, 0) for s in ("running", "dispatched")),
                local=local,
                interrupts=interrupts,
                settings=settings,
                storage=storage,
                as_json=as_json,
            )
        died = None if local.worker_alive() else local.worker_exit_code()
        local.stop()
    finally:
        if local.worker_alive():
            local.stop()
    if died is not None:
        where = f"; its log: {log_path}" if log_path else ""
        say(f"the worker stopped unexpectedly (exit code {died}){where}")
    return _finish(batch_id, settings=settings, storage=storage, as_json=as_json, started=started)


def _stop_on_signal(
    batch_id: str,
    *,
    local: LocalRun,
    interrupts: Interrupts,
    settings: Settings,
    storage: Storage,
    as_json: bool,
    in_flight: int = 0,
) -> int:
    """Pause the batch, stop the scheduler, stop the worker warm; say how to continue."""
    name = interrupts.name
    with session_scope() as session:
        control.pause(session=session, request_id=batch_id)
    waiting = f"; waiting for up to {in_flight} call(s) in flight" if in_flight else ""
    say(f"{name}: stopping: batch {batch_id} paused{waiting} (interrupt again to stop waiting)")
    local.stop_scheduler()
    local.ask_worker_to_stop()
    interrupts.raise_now = True  # a second signal stops the waiting, not the worker's calls
    try:
        stopped = local.wait_worker(local.stop_grace_s)
        if not stopped:  # a call outlived the provider timeout: the sweeper sorts it out later
            local.stop()
            stopped = True
    except Interrupted:
        stopped = False
        local.leave_worker()
    finally:
        interrupts.raise_now = False
    with session_scope() as session:
        batch_queries.close_if_finished(session=session, batch_id=batch_id)
    view = _view(batch_id, settings=settings, storage=storage)
    left = 0 if stopped else view["counts"].get("running", 0)
    say(*stopped_lines(view, signal_name=name, left_running=left))
    if as_json:
        try:
            print_json({**view, "interrupted": name, "continue_with": f"stencil run {batch_id}"})
        except OSError:
            pass
    return interrupts.exit_code


def _finish(
    batch_id: str, *, settings: Settings, storage: Storage, as_json: bool, started: float
) -> int:
    with session_scope() as session:
        batch_queries.close_if_finished(session=session, batch_id=batch_id)
    with session_scope() as session:
        view = poll(session=session, request_id=batch_id, storage=storage, ttl_s=settings.url_ttl_s)
        rows = list(
            result_rows(
                session=session, batch_id=batch_id, storage=storage, ttl_s=settings.url_ttl_s
            )
        )
    if as_json:
        print_json({**view, "results": rows})
    else:
        summary = run_summary(
            view, rows, elapsed_s=time.monotonic() - started, output=storage.describe()
        )
        for line in summary:
            console.print(line, soft_wrap=True, highlight=False)
    ok = all(r["status"] == "succeeded" for r in rows)
    return 0 if ok else 1


def _view(batch_id: str, *, settings: Settings, storage: Storage) -> dict[str, Any]:
    with session_scope() as session:
        return poll(session=session, request_id=batch_id, storage=storage, ttl_s=settings.url_ttl_s)


def worker_log(settings: Settings, batch_id: str) -> Path:
    """Where the run's worker writes its log (in the data dir, like everything embedded)."""
    return settings.data_dir.resolve() / "logs" / f"worker-{batch_id}.log"
