"""Any S3-compatible endpoint as the image store (AWS, MinIO, moto).

Credentials and region come the standard AWS way (environment, shared config and profiles);
the region defaults to us-east-1 when none is configured. The instance metadata service is never
asked (no probe of 169.254.169.254 from a laptop or a container) unless ``instance_metadata`` is
set (``STENCIL_S3_INSTANCE_METADATA=true`` on EC2 with an instance role). With an explicit
``endpoint_url`` the client uses path-style addressing, which MinIO and moto need. Clients are
built on first use and reused: boto3 clients are thread-safe, sessions are not, so each client
gets its own session.

Errors that will not clear by retrying (access denied, no such bucket, unknown or missing
credentials) raise :class:`StorageRefused`; others (timeouts, 5xx) raise :class:`StorageError`.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from stencil.errors import ConfigError, InputError, ObjectMissing, StorageError, StorageRefused

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_REGION = "us-east-1"
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
REFUSED_CODES = frozenset(  # the same request will be refused again until someone fixes it
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "AuthorizationHeaderMalformed",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidToken",
        "NoSuchBucket",
        "PermanentRedirect",
        "SignatureDoesNotMatch",
        "403",
    }
)
INSTANCE_METADATA = "iam-role"  # botocore's name for the instance metadata credential provider


def boto_session(*, instance_metadata: bool = False) -> boto3.session.Session:
    """A boto3 session whose credential chain never asks the instance metadata service unless
    ``instance_metadata`` is set. Nothing here touches the network."""
    core = botocore.session.get_session()
    if not instance_metadata:
        core.get_component("credential_provider").remove(INSTANCE_METADATA)
    return boto3.session.Session(botocore_session=core)


def s3_configured(*, endpoint_url: str | None, storage_url: str | None) -> bool:
    """True when S3 is Stencil's store, an endpoint is set, or credentials are found without
    the instance metadata service (environment, shared files, profiles): no network."""
    if endpoint_url or (storage_url or "").startswith("s3://"):
        return True
    try:
        return boto_session().get_credentials() is not None
    except BotoCoreError:
        return False


def make_client(endpoint_url: str | None = None, *, instance_metadata: bool = False) -> S3Client:
    """A new S3 client with its own session, signature v4, path-style for custom endpoints."""
    session = boto_session(instance_metadata=instance_metadata)
    config = Config(
        # "auto" would ask the instance metadata service for a region (the stubs say bool)
        defaults_mode="legacy",  # type: ignore[arg-type]
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        # cheaper puts on the hot path: no CRC trailer unless the operation requires one, and
        # no client-side parameter validation (our calls are fixed in code)
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        parameter_validation=False,
    )
    client: S3Client = session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=session.region_name or DEFAULT_REGION,
        config=config,
    )
    return client


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` as ``("bucket", "some/key")``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InputError(f"not an s3://bucket/key URL: {url!r}")
    return parts.netloc, parts.path.lstrip("/")


class S3Storage:
    """Objects under ``s3://bucket/prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: S3Client | None = None,
        *,
        endpoint_url: str | None = None,
        instance_metadata: bool = False,
    ) -> None:
        if not bucket:
            raise ConfigError("an S3 store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.instance_metadata = instance_metadata
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, endpoint_url: str | None = None, instance_metadata: bool = False
    ) -> S3Storage:
        """The store named by ``s3://bucket/prefix``."""
        try:
            bucket, prefix = parse_s3_url(url)
        except InputError as exc:
            raise ConfigError(str(exc)) from exc
        return cls(bucket, prefix, endpoint_url=endpoint_url, instance_metadata=instance_metadata)

    @property
    def client(self) -> S3Client:
        """This store's client, built on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(
                        self.endpoint_url, instance_metadata=self.instance_metadata
                    )
        return self._client

    def object_key(self, key: str) -> str:
        """The S3 key that holds ``key``."""
        if not key or key.startswith("/"):
            raise StorageError(f"invalid storage key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        name = self.object_key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise _error(f"cannot write {self._where(name)}", exc) from exc

    def get(self, key: str) -> bytes:
        return _read(self.client, self.bucket, self.object_key(key))

    def exists(self, key: str) -> bool:
        name = self.object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise _error(f"cannot check {self._where(name)}", exc) from exc
        except BotoCoreError as exc:
            raise _error(f"cannot check {self._where(name)}", exc) from exc
        return True

    def url(self, key: str, ttl_s: int) -> str:
        """A presigned GET URL valid for ``ttl_s`` seconds."""
        name = self.object_key(key)
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=ttl_s
            )
        except (BotoCoreError, ClientError) as exc:
            raise _error(f"cannot sign a URL for {self._where(name)}", exc) from exc
        return url

    def describe(self) -> str:
        place = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        endpoint = self.endpoint_url or str(self.client.meta.endpoint_url)
        return f"{place} ({_without_userinfo(endpoint)})"

    def _where(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"


def read_s3_url(url: str, *, endpoint_url: str | None, instance_metadata: bool = False) -> bytes:
    """The bytes of an ``s3://bucket/key`` object in any bucket (reference images)."""
    bucket, key = parse_s3_url(url)
    if not key:
        raise InputError(f"no object key in {url!r}")
    return _read(_shared_client(endpoint_url, instance_metadata), bucket, key)


@lru_cache(maxsize=8)
def _shared_client(endpoint_url: str | None, instance_metadata: bool) -> S3Client:
    return make_client(endpoint_url, instance_metadata=instance_metadata)


def _read(client: S3Client, bucket: str, name: str) -> bytes:
    try:
        response = client.get_object(Bucket=bucket, Key=name)
        data: bytes = response["Body"].read()
    except ClientError as exc:
        if _is_missing(exc):
            raise ObjectMissing(f"no object s3://{bucket}/{name}") from exc
        raise _error(f"cannot read s3://{bucket}/{name}", exc) from exc
    except BotoCoreError as exc:
        raise _error(f"cannot read s3://{bucket}/{name}", exc) from exc
    return data


def _error(what: str, exc: BotoCoreError | ClientError) -> StorageError:
    """A storage error for a failed S3 request, permanent when retrying cannot help; the
    refusal's code comes first, as the user should read it."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageRefused(f"no S3 credentials found: {what}: {exc}")
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in REFUSED_CODES:
            return StorageRefused(f"S3 refused the request ({code}): {what}: {exc}")
    return StorageError(f"{what}: {exc}")


def _code(exc: ClientError) -> str:
    response: Any = exc.response
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(exc: ClientError) -> bool:
    response: Any = exc.response
    code = _code(exc)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in MISSING_CODES or (status == 404 and code != "NoSuchBucket")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
