"""The image stores: a local folder, and S3 against a moto endpoint over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stencil.errors import ObjectMissing, StorageError, StorageRefused
from stencil.settings import Settings
from stencil.storage import open_storage
from stencil.storage.local import LocalStorage
from stencil.storage.s3 import S3Storage, read_s3_url, s3_configured
from tests.hostile._storage import AuthS3, Trap, metadata_trap

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


# ------------------------------------------------------------------ refusals are permanent


def test_local_a_file_where_a_folder_should_be_is_refused(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("x", b"a file", "text/plain")

    with pytest.raises(StorageRefused) as raised:
        store.put("x/1.png", PNG, "image/png")
    assert raised.value.permanent
    assert "a file stands where a folder is needed" in str(raised.value)
    assert store.get("x") == b"a file"


def test_local_a_folder_where_the_file_should_go_is_refused(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("x/1.png", PNG, "image/png")

    with pytest.raises(StorageRefused, match="a folder stands where the file should go"):
        store.put("x", b"y", "text/plain")
    assert store.get("x/1.png") == PNG


def test_local_a_file_size_limit_is_refused(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the write fail with EFBIG (in a child: the limit is per process)."""
    code = (
        "import resource, sys\n"
        "from stencil.storage.local import LocalStorage\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))\n"
        "try:\n"
        f"    LocalStorage({str(tmp_path)!r}).put('big.png', b'x' * 5000, 'image/png')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.permanent, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("StorageRefused True file too large"), out
    assert not (tmp_path / "big.png").exists()


def test_s3_missing_bucket_is_refused_for_good(s3_bucket: tuple[str, str]) -> None:
    store = S3Storage("no-such-bucket-here", endpoint_url=s3_bucket[0])

    with pytest.raises(StorageRefused, match="NoSuchBucket"):
        store.put("a.png", PNG, "image/png")


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthS3]:
    server = AuthS3(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def test_s3_refusals_by_a_checking_endpoint_are_permanent(
    auth_s3: AuthS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in auth_s3.reader_env.items():  # a real user without permission
        monkeypatch.setenv(name, value)
    store = S3Storage(auth_s3.bucket, endpoint_url=auth_s3.url)
    with pytest.raises(StorageRefused, match="AccessDenied"):
        store.put("a.png", PNG, "image/png")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOBODYKNOWS")  # a key it has never seen
    store = S3Storage(auth_s3.bucket, endpoint_url=auth_s3.url)
    with pytest.raises(StorageRefused, match="InvalidAccessKeyId"):
        store.put("a.png", PNG, "image/png")


def test_s3_unreachable_endpoint_is_not_permanent(s3_env: dict[str, str]) -> None:
    from tests.services import free_port

    store = S3Storage("b", endpoint_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(StorageError) as raised:
        store.put("a.png", PNG, "image/png")
    assert not raised.value.permanent


# ------------------------------------------------------------------ no metadata probe


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trap]:
    """No AWS configuration at all, and the metadata address pointed at a loopback trap."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with metadata_trap() as trap:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", trap.url)
        yield trap


def test_stencil_clients_never_ask_the_metadata_service(no_aws: Trap) -> None:
    from stencil.storage.s3 import _shared_client
    from tests.services import free_port

    _shared_client.cache_clear()  # clients made in other tests had credentials

    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageRefused, match="no S3 credentials"):
        S3Storage("b", endpoint_url=closed).put("a.png", PNG, "image/png")
    with pytest.raises(StorageRefused, match="no S3 credentials"):
        read_s3_url("s3://b/a.png", endpoint_url=None)
    assert not s3_configured(endpoint_url=None, storage_url=None)
    assert no_aws.hits == 0

    # the trap works: a plain boto3 client does go looking there
    import boto3
    from botocore.exceptions import NoCredentialsError

    plain = boto3.session.Session().client("s3", endpoint_url=closed, region_name="us-east-1")
    with pytest.raises(NoCredentialsError):
        plain.put_object(Bucket="b", Key="a.png", Body=PNG)
    assert no_aws.hits > 0


def test_s3_counts_as_configured_by_store_endpoint_or_credentials(
    no_aws: Trap, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert s3_configured(endpoint_url=None, storage_url="s3://bucket/out")
    assert s3_configured(endpoint_url="http://127.0.0.1:9", storage_url=None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert s3_configured(endpoint_url=None, storage_url="/some/folder")
    assert no_aws.hits == 0
