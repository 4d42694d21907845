"""The image stores: a local folder, and S3 against a moto endpoint over HTTP."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from stencil.errors import ObjectMissing, StorageError
from stencil.settings import Settings
from stencil.storage import open_storage
from stencil.storage.local import LocalStorage
from stencil.storage.s3 import S3Storage, read_s3_url

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


# ------------------------------------------------------------------ local


def test_local_round_trip(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "out")
    store.put("b_1/i_2/a_3.png", PNG, "image/png")

    assert store.get("b_1/i_2/a_3.png") == PNG
    assert store.exists("b_1/i_2/a_3.png")
    assert (tmp_path / "out" / "b_1" / "i_2" / "a_3.png").read_bytes() == PNG


def test_local_overwrite_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("k.json", b"1", "application/json")
    store.put("k.json", b"2", "application/json")

    assert store.get("k.json") == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]


def test_local_missing_object(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)

    assert not store.exists("nope.png")
    with pytest.raises(ObjectMissing):
        store.get("nope.png")
    with pytest.raises(ObjectMissing):
        store.get("no/such/folder.png")


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside.png", "a/../../b.png", "a//b", "./a", "a\\b", "a/"]
)
def test_local_refuses_keys_that_escape_or_are_malformed(tmp_path: Path, key: str) -> None:
    store = LocalStorage(tmp_path / "root")

    with pytest.raises(StorageError):
        store.put(key, b"x", "text/plain")
    assert not (tmp_path / "outside.png").exists()


def test_local_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)

    with pytest.raises(StorageError):
        LocalStorage(root).put("link/escaped.png", b"x", "image/png")
    assert not (tmp_path / "escaped.png").exists()


def test_local_url_and_describe(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("a b/c.png", PNG, "image/png")

    url = store.url("a b/c.png", ttl_s=60)
    assert url.startswith("file://")
    with urllib.request.urlopen(url) as response:
        assert response.read() == PNG
    assert store.describe() == str(tmp_path.resolve())


def test_open_storage_defaults_to_a_folder(tmp_path: Path) -> None:
    store = open_storage(Settings(data_dir=tmp_path))

    assert isinstance(store, LocalStorage)
    assert store.describe() == str((tmp_path / "output").resolve())


# ------------------------------------------------------------------ S3


@pytest.fixture
def s3_store(s3_bucket: tuple[str, str]) -> S3Storage:
    endpoint, bucket = s3_bucket
    return S3Storage.from_url(f"s3://{bucket}/run/", endpoint_url=endpoint)


def test_s3_round_trip(s3_store: S3Storage, s3_bucket: tuple[str, str]) -> None:
    s3_store.put("b_1/a.png", PNG, "image/png")

    assert s3_store.get("b_1/a.png") == PNG
    assert s3_store.exists("b_1/a.png")
    assert not s3_store.exists("b_1/b.png")
    head = s3_store.client.head_object(Bucket=s3_bucket[1], Key="run/b_1/a.png")
    assert head["ContentType"] == "image/png"


def test_s3_missing_object(s3_store: S3Storage) -> None:
    with pytest.raises(ObjectMissing):
        s3_store.get("nope.png")


def test_s3_missing_bucket_is_a_storage_error_not_missing_object(
    s3_bucket: tuple[str, str],
) -> None:
    store = S3Storage("no-such-bucket-here", endpoint_url=s3_bucket[0])

    with pytest.raises(StorageError) as raised:
        store.get("a.png")
    assert not isinstance(raised.value, ObjectMissing)
    assert raised.value.__cause__ is not None


def test_s3_unreachable_endpoint_is_a_storage_error(s3_env: dict[str, str]) -> None:
    from tests.services import free_port

    store = S3Storage("b", endpoint_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(StorageError):
        store.get("a.png")


def test_s3_presigned_url_downloads_the_same_bytes(s3_store: S3Storage) -> None:
    s3_store.put("img.png", PNG, "image/png")

    url = s3_store.url("img.png", ttl_s=300)
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == PNG


def test_s3_describe_names_bucket_prefix_and_endpoint_without_secrets(
    s3_store: S3Storage, s3_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = s3_bucket
    described = s3_store.describe()

    assert described == f"s3://{bucket}/run ({endpoint})"
    assert "test" not in described.replace(bucket, "")


def test_open_storage_picks_s3(s3_bucket: tuple[str, str], tmp_path: Path) -> None:
    endpoint, bucket = s3_bucket
    settings = Settings(data_dir=tmp_path, storage_url=f"s3://{bucket}/x", s3_endpoint_url=endpoint)
    store = open_storage(settings)

    store.put("k", b"v", "text/plain")
    assert isinstance(store, S3Storage)
    assert store.get("k") == b"v"


def test_read_s3_url_reads_any_bucket(s3_bucket: tuple[str, str], s3_server: object) -> None:
    endpoint, bucket = s3_bucket
    S3Storage(bucket, "refs", endpoint_url=endpoint).put("cat.png", PNG, "image/png")

    assert read_s3_url(f"s3://{bucket}/refs/cat.png", endpoint_url=endpoint) == PNG
    with pytest.raises(ObjectMissing):
        read_s3_url(f"s3://{bucket}/refs/dog.png", endpoint_url=endpoint)
