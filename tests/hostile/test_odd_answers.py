"""Odd answers from the provider, or from a reference server, cost nothing twice, store nothing
unsafe and stop nothing else.

One fleet for the module (Postgres, Redis, moto S3, a scheduler and a worker process, the
`vertex` provider through the real google-genai SDK against the emulator). Each test turns the
emulator's ``hostile`` knob for its own prompts only and shows the money (the ledger equals the
emulator's bill) and the data (what reached the record, the store and the output).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from models.tables import Attempt, Item
from stencil.emulator import EmulatorHandle, start_emulator
from stencil.errors import FetchRefused
from stencil.fetcher import fetch_image
from stencil.settings import Settings
from tests.cli import run_cli, stencil_env
from tests.fleet import CANARY_TOKEN, Fleet, fleet_env, vertex_settings, write_manifest
from tests.hostile._drip import PHASES, DripServer, self_signed
from tests.services import S3_ENV_UNSET, PostgresServer, RedisServer, S3Server, unavailable

pytestmark = pytest.mark.slow
NO_IMAGE_RETRIES = 1
CANARY_PART = CANARY_TOKEN.split(".", 1)[1]  # what would show if a redaction were partial


@dataclass
class OddFleet:
    fleet: Fleet
    emulator: EmulatorHandle
    pg_url: str
    bucket: str
    s3: Any
    home: Path

    def submit(self, name: str, prompts: list[str]) -> str:
        rows = [{"sku": f"{name}-{n}", "prompt": prompt} for n, prompt in enumerate(prompts)]
        manifest = write_manifest(self.home / "manifests" / name, rows, name=name)
        return str(self.fleet.json("submit", str(manifest))["request_id"])

    def ledger(self, *batch_ids: str) -> int:
        """What the batches recorded as spent (what `stencil poll` shows as cost_usd)."""
        query = "SELECT coalesce(sum(spent_micros), 0) FROM batches WHERE id = ANY(%s)"
        return int(self.rows(query, list(batch_ids))[0][0])

    def counts(self, batch_id: str) -> dict[str, int]:
        query = "SELECT status, count(*) FROM items WHERE batch_id = %s GROUP BY status"
        return {status: n for status, n in self.rows(query, batch_id)}

    def wait_ended(self, batch_id: str, timeout: float = 60) -> dict[str, int]:
        """The item counts once every item of the batch has ended (read from the record)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts(batch_id)
            if not set(counts) & {"queued", "dispatched", "running", "waiting"}:
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"batch did not finish: {counts}\n{self.logs()[-3000:]}")
            time.sleep(0.2)

    def rows(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg_url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def logs(self) -> str:
        """Everything the scheduler and worker processes wrote (stdout and stderr)."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.home.glob("*.log")))

    def objects(self) -> dict[str, bytes]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {
            o["Key"]: self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            for o in listed
        }


@pytest.fixture(scope="module")
def odd_fleet(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    s3_server: S3Server,
) -> Iterator[OddFleet]:
    home = tmp_path_factory.mktemp("odd-answers")
    name = f"t_{os.urandom(6).hex()}"
    try:
        pg_url = postgres_server.create_database(name)
    except psycopg.Error as exc:
        unavailable(f"cannot create a test database: {exc}")
    redis_server.flush()
    bucket = s3_server.create_bucket()
    with start_emulator(seed=13) as emulator:
        env = fleet_env(
            home=home / "home",
            pg_url=pg_url,
            redis_url=redis_server.url,
            s3=(s3_server.url, bucket),
            s3_env=s3_server.env,
            STENCIL_NO_IMAGE_RETRIES=str(NO_IMAGE_RETRIES),
            STENCIL_MAX_ATTEMPTS="3",
            **vertex_settings(emulator.url),
        )
        for unset in S3_ENV_UNSET:
            env.pop(unset, None)
        fleet = Fleet(env=env, log_dir=home)
        assert fleet.cli("db", "upgrade").returncode == 0
        fleet.start_scheduler()
        fleet.start_worker(concurrency=8)
        try:
            yield OddFleet(fleet, emulator, pg_url, bucket, s3_server.client(), home)
        finally:
            fleet.stop()
            with contextlib.suppress(psycopg.Error):
                postgres_server.drop_database(name)


@pytest.fixture
def odd(odd_fleet: OddFleet) -> OddFleet:
    """The module's fleet with the emulator's counters zeroed and no hostile answers."""
    odd_fleet.emulator.reset(knobs=True)
    return odd_fleet


def _column_length(table: type[Attempt] | type[Item], column: str) -> int:
    length = table.__table__.c[column].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


# ---- (a) oversized fields echoing the token: bounded, redacted, and the fleet goes on -------


def test_oversized_fields_are_bounded_and_redacted_and_other_batches_complete(
    odd: OddFleet,
) -> None:
    odd.emulator.configure(hostile=["long_fields"], hostile_match="evil poster")
    evil_prompts = [f"evil poster {n}" for n in range(4)] + ["evil poster [[BAD_REQUEST]]"]
    evil = odd.submit("evil", evil_prompts)
    assert odd.wait_ended(evil) == {"succeeded": 4, "failed": 1}
    # the odd answers are recorded; an unrelated batch submitted now is dispatched and done
    calm = odd.submit("calm", [f"calm poster {n}" for n in range(4)])
    assert odd.wait_ended(calm) == {"succeeded": 4}
    assert odd.ledger(evil, calm) == odd.emulator.stats()["bill_micros"] > 0

    # the record: every provider string within its column, the echoed token redacted
    lengths = odd.rows(
        "SELECT max(length(model_version)), max(length(response_id)), max(length(error_status)),"
        " max(length(finish_reason)), max(length(traffic_type)), bool_and(model_version LIKE %s)"
        " FILTER (WHERE state = 'succeeded') FROM attempts WHERE batch_id = %s",
        "%[redacted]%",
        evil,
    )[0]
    limits = [
        _column_length(Attempt, c)
        for c in ("model_version", "response_id", "error_status", "finish_reason", "traffic_type")
    ]
    assert all(n is not None and n <= limit for n, limit in zip(lengths[:5], limits, strict=True))
    assert lengths[5] is True  # the long values did arrive, redacted and cut
    record = odd.rows(
        "SELECT row_to_json(b)::text FROM batches b UNION ALL SELECT row_to_json(i)::text FROM"
        " items i UNION ALL SELECT row_to_json(a)::text FROM attempts a"
    )
    assert record and not any(CANARY_PART in text for (text,) in record)

    # the store: sniffed content types, no token in a sidecar
    objects = odd.objects()
    keys = odd.rows(
        "SELECT output_key FROM items WHERE batch_id IN (%s, %s) AND status = 'succeeded'",
        evil,
        calm,
    )
    assert len(keys) == 8
    for (key,) in keys:
        sidecar = json.loads(objects[f"out/{key}.json"])
        assert sidecar["content_type"] == "image/png"
        assert len(sidecar["model_version"]) <= _column_length(Attempt, "model_version")
        head = odd.s3.head_object(Bucket=odd.bucket, Key=f"out/{key}")
        assert head["ContentType"] == "image/png"
    assert not any(CANARY_PART.encode() in data for data in objects.values())

    # the output: poll, results and the processes' logs
    shown = [
        odd.fleet.cli("poll", evil, "--items", "--json").stdout,
        odd.fleet.cli("results", evil, "--format", "jsonl").stdout,
        odd.logs(),
    ]
    failed = next(i for i in json.loads(shown[0])["items"] if i["status"] == "failed")
    assert failed["error"]["message"].startswith("400 INVALID_ARGUMENT+[redacted]+xxx")
    assert not any(CANARY_PART in text for text in shown)


# ---- (b) an SVG labelled image/png is never stored ----------------------------------------


def test_an_svg_labelled_png_is_never_stored(odd: OddFleet) -> None:
    odd.emulator.configure(hostile=["svg_image"], hostile_match="svg badge")
    batch = odd.submit("svg", ["svg badge 0", "svg badge 1"])

    assert odd.wait_ended(batch) == {"no_image": 2}
    stats = odd.emulator.stats()
    assert stats["per_prompt"] == {"svg badge 0": 2, "svg badge 1": 2}  # 1 + NO_IMAGE_RETRIES
    assert odd.ledger(batch) == stats["bill_micros"] > 0
    keys = [key for (key,) in odd.rows("SELECT output_key FROM items WHERE batch_id = %s", batch)]
    stored = odd.objects()
    assert not any(k.endswith(key) or k.endswith(key + ".json") for k in stored for key in keys)
    assert not any(data.startswith(b"<svg") for data in stored.values())
    for item in odd.fleet.json("poll", batch, "--items")["items"]:
        assert item["images"] == []
        assert "not PNG, JPEG or WebP" in item["error"]["message"]


# ---- (c) negative or absurd token counts: never a negative cost, the ledger is the bill -----


@pytest.mark.parametrize("mode", ["negative_tokens", "huge_tokens"])
def test_odd_token_counts_never_give_a_negative_cost(odd: OddFleet, mode: str) -> None:
    odd.emulator.configure(hostile=[mode], hostile_match=f"{mode} mug")
    batch = odd.submit(mode.replace("_", "-"), [f"{mode} mug 0", f"{mode} mug 1"])

    assert odd.wait_ended(batch) == {"succeeded": 2}
    assert odd.ledger(batch) == odd.emulator.stats()["bill_micros"] > 0
    item_costs = odd.rows("SELECT cost_micros FROM items WHERE batch_id = %s", batch)
    assert len(item_costs) == 2 and all(cost > 0 for (cost,) in item_costs)
    attempts = odd.rows(
        "SELECT prompt_tokens, output_tokens, cost_micros, message FROM attempts"
        " WHERE batch_id = %s",
        batch,
    )
    assert len(attempts) == 2
    for prompt_tokens, output_tokens, cost, message in attempts:
        assert prompt_tokens >= 0 and output_tokens >= 0 and cost > 0
        assert message.startswith("the answer's usage is not believable")


# ---- (d) an unparseable 200 is not retried as transient ------------------------------------


def test_an_unparseable_200_is_retried_only_within_the_no_image_bound(odd: OddFleet) -> None:
    odd.emulator.configure(hostile=["unparseable"], hostile_match="garbled")
    batch = odd.submit("garbled", ["garbled mug 0", "garbled mug 1"])

    assert odd.wait_ended(batch) == {"no_image": 2}
    stats = odd.emulator.stats()
    assert set(stats["per_prompt"].values()) == {1 + NO_IMAGE_RETRIES}
    assert odd.ledger(batch) == stats["bill_micros"] > 0
    for item in odd.fleet.json("poll", batch, "--items")["items"]:
        assert "could not be read" in item["error"]["message"]


# ---- (e) one item the sweeper cannot repair does not stop the others, nor dispatch ----------


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_a_poisoned_sidecar_is_not_trusted_and_dispatch_goes_on(odd: OddFleet) -> None:
    odd.emulator.configure(latency_mean_s=3.0)
    stuck = odd.submit("stuck", [f"slow lamp {n}" for n in range(3)])
    _wait_for(lambda: odd.emulator.stats()["in_flight"] == 3)
    running = odd.rows(
        "SELECT id, current_attempt_id, output_key FROM items"
        " WHERE batch_id = %s AND status = 'running' ORDER BY seq",
        stuck,
    )
    assert len(running) == 3
    poisoned, attempt_id, output_key = running[0]
    # What a worker leaves before dying, written by a hand (or a bug) it should not trust: a
    # sidecar naming the attempt, with a token count no Postgres integer column takes.
    sidecar = {"attempt_id": attempt_id, "tokens": {"prompt": 10**12, "output": 0}}
    odd.s3.put_object(Bucket=odd.bucket, Key=f"out/{output_key}", Body=b"\x89PNG\r\n\x1a\n")
    odd.s3.put_object(
        Bucket=odd.bucket, Key=f"out/{output_key}.json", Body=json.dumps(sidecar).encode()
    )
    odd.fleet.kill("worker")  # mid-call: the three leases will expire
    odd.emulator.configure(latency_mean_s=0.0)
    odd.fleet.start_worker("worker-2")
    later = odd.submit("later", ["quick lamp 0", "quick lamp 1"])

    assert odd.wait_ended(later) == {"succeeded": 2}
    assert odd.wait_ended(stuck) == {"succeeded": 3}
    # the absurd sidecar was not taken as a result: the cut attempt is outcome_unknown (its
    # reservation stays in the ledger) and the item was generated again
    states = dict(odd.rows("SELECT id, state FROM attempts WHERE id = %s", attempt_id))
    assert states[attempt_id] == "outcome_unknown"
    worst = odd.rows("SELECT max(prompt_tokens) FROM attempts WHERE item_id = %s", poisoned)
    assert worst[0][0] < 10**6
    _wait_for(lambda: odd.emulator.stats()["in_flight"] == 0)  # the cut calls are answered


# ---- (f) a reference server that drips bytes cannot hold a fetch past its deadline ----------


@pytest.mark.parametrize("phase", PHASES)
def test_a_dripping_reference_server_is_cut_at_the_deadline(phase: str) -> None:
    server = DripServer(phase)
    settings = Settings(fetch_timeout_s=1.0, fetch_allow_hosts=["http://drip.test"])
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            fetch_image(
                f"http://drip.test:{server.port}/ref.png",
                settings=settings,
                resolver=lambda host, port: ["127.0.0.1"],
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=fetch, daemon=True)
    try:
        thread.start()
        thread.join(timeout=20)  # the drip would last hours
        assert not thread.is_alive(), "the fetch outlived its deadline"
    finally:
        server.close()
    assert server.connections == 1
    assert len(outcome) == 1 and isinstance(outcome[0], FetchRefused)
    assert "took too long" in str(outcome[0])


def test_submit_with_a_dripping_https_reference_ends_in_a_problem(tmp_path: Path) -> None:
    cert, tls = self_signed(tmp_path / "tls")
    server = DripServer("body", tls=tls)
    rows = [{"sku": "a", "prompt": "a lamp"}]
    template = {"prompt": "{{ prompt }}", "images": [f"https://127.0.0.1:{server.port}/ref.png"]}
    manifest = write_manifest(tmp_path / "m", rows, template=template)
    env = {k: v for k, v in stencil_env().items() if not k.startswith("STENCIL_")}
    env.update(
        STENCIL_DATA_DIR=str(tmp_path / "home"),
        STENCIL_FETCH_TIMEOUT_S="1",
        STENCIL_FETCH_ALLOW_HOSTS='["127.0.0.1"]',
        SSL_CERT_FILE=str(cert),
    )
    try:
        result = run_cli("submit", str(manifest), env=env, timeout=30)  # the drip: hours
    finally:
        server.close()

    assert result.returncode == 2, result.stderr
    assert "template.images[0]" in result.stderr and "took too long" in result.stderr
    assert "nothing was submitted" in result.stderr
