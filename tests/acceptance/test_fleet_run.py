"""The fleet shape: Postgres, Redis, S3 over HTTP, and real scheduler and worker processes."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.cli import ROOT
from tests.fleet import Fleet, fleet_env

pytestmark = pytest.mark.slow
CATALOG = ROOT / "manifests" / "catalog" / "catalog.yaml"


@pytest.fixture
def fleet(
    tmp_path: Path, pg_url: str, redis_url: str, s3_bucket: tuple[str, str], s3_env: dict[str, str]
) -> Iterator[Fleet]:
    env = fleet_env(
        home=tmp_path / "home", pg_url=pg_url, redis_url=redis_url, s3=s3_bucket, s3_env=s3_env
    )
    fleet = Fleet(env=env, log_dir=tmp_path)
    upgraded = fleet.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    yield fleet
    fleet.stop()


def test_catalog_on_postgres_redis_s3(fleet: Fleet, s3_bucket: tuple[str, str]) -> None:
    submitted = fleet.json("submit", str(CATALOG))
    batch_id = submitted["request_id"]
    fleet.start_scheduler()
    fleet.start_worker()
    view = fleet.wait_done(batch_id)
    assert view["counts"] == {"succeeded": submitted["items"]}, fleet.logs()

    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]}
    full = fleet.json("poll", batch_id, "--items")
    for item in full["items"]:
        assert f"out/{item['storage_key']}" in keys
        assert f"out/{item['storage_key']}.json" in keys
        url = item["images"][0]["url"]
        assert url.startswith(endpoint) and "Signature" in url
        with urllib.request.urlopen(url, timeout=10) as response:
            downloaded = response.read()
        stored = s3.get_object(Bucket=bucket, Key=f"out/{item['storage_key']}")["Body"].read()
        assert downloaded == stored and downloaded.startswith(b"\x89PNG")
    single = fleet.json("poll", full["items"][0]["request_id"])
    assert single["status"] == "succeeded" and single["images"]
