"""kombu's filesystem transport with atomic message files (the embedded default's broker).

kombu writes a message file in place while a consumer may already move and read it, so a
consumer can read a half-written file and crash on the JSON. Here each message is written to a
hidden temporary name the consumer ignores, then renamed into place in one step. A consumer
takes a message by renaming it into the processed folder (in the data dir; kombu's own code moves
it through the system's temporary folder), and waits for messages in short slices, so a worker
notices a shutdown quickly.
"""

from __future__ import annotations

import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

ALIAS = "stencilfs"
DRAIN_SLICE_S = 0.25


class Channel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        temporary = os.path.join(self.data_folder_out, f".tmp-{uuid.uuid4()}")
        try:
            with open(temporary, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
            os.replace(temporary, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _taken_folder(self) -> str:
        """Where a consumer moves a message it takes: the processed folder when one is set, else
        a `processed` folder beside the inbox (never the current or the system temporary one)."""
        folder: str | None = getattr(self, "_taken", None)
        if folder is None:
            configured = self.transport_options.get("processed_folder")
            inbox = os.path.abspath(self.data_folder_in)
            folder = str(configured or os.path.join(os.path.dirname(inbox), "processed"))
            os.makedirs(folder, exist_ok=True)
            self._taken = folder
        return folder

    def _get(self, queue: Any, timeout: Any = None) -> Any:  # type: ignore[override]
        """The next message of ``queue``: moved out of the inbox into our processed folder (in
        the data dir: kombu's own code moves it through the system temporary folder), read,
        then removed unless processed messages are kept."""
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.startswith(".") or name.partition(".")[2] != wanted:
                continue
            taken = os.path.join(self._taken_folder(), name)
            try:
                os.replace(os.path.join(self.data_folder_in, name), taken)
            except OSError:  # another consumer took it first
                continue
            try:
                with open(taken, "rb") as handle:
                    payload = handle.read()
                if not self.store_processed:
                    os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            return loads(bytes_to_str(payload))  # type: ignore[no-untyped-call]
        raise Empty()


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:  # type: ignore[override]
        """Wait at most ``DRAIN_SLICE_S`` per call. Celery's blocking loop (used with this
        transport) checks for shutdown only between 2 s waits, and waits once more after it has
        seen one: a warm stop took 2-4 s of an idle worker. Short slices make it well under 1 s."""
        if timeout is not None:
            timeout = min(timeout, DRAIN_SLICE_S)
        return super().drain_events(connection, timeout=timeout)  # type: ignore[no-untyped-call]


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
