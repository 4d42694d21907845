"""The Celery app. Configured lazily from settings: nothing connects at import time.

Delivery settings follow DESIGN.md: late acknowledgement, prefetch 1, reject on worker lost, a
visibility timeout longer than any task may run. Messages carry item ids only; the database
decides whether a message is still wanted, so duplicates and losses are harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from stencil.settings import Settings, get_settings
from worker import fs_transport

TASK_NAME = "stencil.run_item"
QUEUE = "stencil"
VISIBILITY_TIMEOUT_S = 4 * 3600

app = Celery("stencil", set_as_current=False)


def celery_config(settings: Settings) -> dict[str, Any]:
    transport_options: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    if settings.embedded_broker:
        settings.ensure_dirs()
        folder = str(settings.broker_dir / "in")
        transport_options.update(
            data_folder_in=folder,
            data_folder_out=folder,
            processed_folder=str(settings.broker_dir / "processed"),
            # the exchange tables (kombu's default is ./control, wherever the user stands)
            control_folder=str(settings.broker_dir / "control"),
            store_processed=False,
            polling_interval=0.1,
        )
        broker = f"{fs_transport.ALIAS}://"
    else:
        broker = str(settings.broker_url)
    return {
        "broker_url": broker,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_enable_remote_control": not settings.embedded_broker,
    }


@app.on_configure.connect  # type: ignore[untyped-decorator]
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(get_settings()))


def send_items(item_ids: list[str]) -> None:
    """Put item ids on the broker, one message each, over one producer."""
    if not item_ids:
        return
    with app.producer_or_acquire() as producer:
        for item_id in item_ids:
            app.send_task(TASK_NAME, args=[item_id], producer=producer, queue=QUEUE)
