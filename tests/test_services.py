"""The test harness itself: the services start, answer, and restart as the tests need."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis

from stencil.settings import get_settings
from tests import services
from tests.services import PostgresServer, RedisServer, S3Server, unavailable


def test_pg_url_is_an_empty_database_that_accepts_connections(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)


def test_each_test_gets_its_own_database(pg_url: str, postgres_server: PostgresServer) -> None:
    assert pg_url != postgres_server.url
    other = postgres_server.create_database()
    try:
        assert other != pg_url
    finally:
        postgres_server.drop_database(other.rsplit("/", 1)[1])


def test_postgres_restart_keeps_committed_data(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")

    postgres_server.restart()

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("survives",)]


def test_postgres_connection_is_refused_while_halted(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    postgres_server.halt()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_url, connect_timeout=2)
    finally:
        postgres_server.start()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_redis_url_answers_and_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_redis_restart_empties_it(redis_server: RedisServer, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("before", "1")
        redis_server.restart()
        assert client.get("before") is None
        assert client.dbsize() == 0
    finally:
        client.close()


def test_s3_bucket_is_fresh_and_usable(s3_bucket: tuple[str, str], s3_server: S3Server) -> None:
    endpoint, bucket = s3_bucket
    assert endpoint == s3_server.url
    client = s3_server.client()
    try:
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        client.put_object(Bucket=bucket, Key="a.txt", Body=b"hello")
        assert client.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"hello"
    finally:
        client.close()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "test"


def test_s3_restart_keeps_objects(s3_bucket: tuple[str, str], s3_server: S3Server) -> None:
    _, bucket = s3_bucket
    client = s3_server.client()
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"1")
        s3_server.restart()
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"
    finally:
        client.close()


def test_stencil_env_isolates_settings(
    stencil_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    assert settings.data_dir == stencil_env
    assert settings.database_url is None
    assert settings.provider == "preview"
    assert os.environ["NO_GCE_CHECK"] == "true"


def test_unavailable_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must not be skipped"):
        unavailable("no such service")


def test_unavailable_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("no such service")


def test_postgres_falls_back_to_a_database_on_the_machine_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not services.port_open(5432):
        pytest.skip("no Postgres on 127.0.0.1:5432 to fall back to")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(services, "_pg_bindir", lambda: None)
    server = PostgresServer()
    server.start()
    try:
        assert not server.own
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (server.dbname,)
        with pytest.raises(pytest.skip.Exception):
            server.restart()
    finally:
        server.stop()
    with psycopg.connect(server.admin_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (server.dbname,))
        assert found.fetchone() is None


def test_redis_falls_back_to_a_db_index_on_the_machine_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not services.port_open(6379):
        pytest.skip("no Redis on 127.0.0.1:6379 to fall back to")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(services, "REDIS_BINARY", "no-such-redis-server")
    server = RedisServer()
    server.start()
    try:
        assert not server.own
        assert server.url == "redis://127.0.0.1:6379/15"
        client = server.client()
        try:
            assert client.dbsize() == 0
        finally:
            client.close()
        with pytest.raises(pytest.skip.Exception):
            server.restart()
    finally:
        server.stop()
