"""The embedded broker's message files appear whole: a consumer never reads a partial one."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from kombu import Connection

from worker import fs_transport

COUNT = 1500
BODY = "x" * 50_000  # big enough that writing a file takes a moment


def _produce(url: str, options: dict[str, str]) -> None:
    with Connection(url, transport_options=options) as conn:
        for i in range(COUNT):
            conn.default_channel._put("q", {"item": BODY, "n": i})


def _consume(url: str, options: dict[str, str], producer: multiprocessing.Process) -> list[int]:
    seen: list[int] = []
    with Connection(url, transport_options=options) as conn:
        channel = conn.default_channel
        while len(seen) < COUNT and (
            producer.is_alive() or any(Path(options["data_folder_in"]).iterdir())
        ):
            try:
                message = channel._get("q")
            except Exception as exc:
                if type(exc).__name__ == "Empty":
                    continue
                raise
            assert message["item"] == BODY
            seen.append(message["n"])
    return seen


@pytest.mark.parametrize("url", [f"{fs_transport.ALIAS}://"])
def test_concurrent_put_and_get_never_sees_partial_files(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    producer = multiprocessing.get_context("spawn").Process(target=_produce, args=(url, options))
    producer.start()
    try:
        seen = _consume(url, options, producer)
    finally:
        producer.join(timeout=60)
    assert sorted(seen) == list(range(COUNT))
    assert not list(folder.iterdir())  # no temporary files left behind


def test_the_broker_writes_only_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages, exchange tables and taken messages stay in the data dir: nothing lands in the
    current folder (kombu's default `control/`) or the system temporary folder."""
    import tempfile

    from stencil.settings import Settings
    from worker.app import celery_config

    cwd, system_tmp = tmp_path / "cwd", tmp_path / "system-tmp"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # absent: any use would show
    config = celery_config(Settings(data_dir=tmp_path / "data"))
    with Connection(
        config["broker_url"], transport_options=config["broker_transport_options"]
    ) as conn:
        queue = conn.SimpleQueue("stencil")
        queue.put({"item": "i_1"})
        message = queue.get(timeout=5)
        assert message.payload == {"item": "i_1"}
        message.ack()
        queue.close()
    assert list(cwd.iterdir()) == [] and not system_tmp.exists()
    broker = tmp_path / "data" / "broker"
    assert list((broker / "control").glob("*.exchange"))
    assert list((broker / "in").iterdir()) == list((broker / "processed").iterdir()) == []
