"""One typed settings object, read from ``STENCIL_*`` environment variables.

With nothing set, Stencil runs embedded: a SQLite file, Celery on kombu's filesystem transport
and an output folder, all under ``STENCIL_DATA_DIR`` (default ``./.stencil``), with the offline
``preview`` provider. Point the URLs at Postgres, Redis and S3 and the same code runs a fleet.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_URL_TTL_S = 7 * 24 * 3600


class Settings(BaseSettings):
    """Everything Stencil reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="STENCIL_", extra="ignore")

    data_dir: Path = Field(default=Path(".stencil"), description="Home of the embedded default")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite")
    broker_url: str | None = Field(default=None, description="Celery broker; default filesystem")
    storage_url: str | None = Field(default=None, description="Folder path or s3://bucket/prefix")
    s3_endpoint_url: str | None = None
    s3_instance_metadata: bool = Field(
        default=False, description="Let boto3 ask the EC2 instance metadata service for credentials"
    )
    spool_dir: Path | None = Field(
        default=None, description="Where paid images wait when storage refuses them"
    )
    provider: str = "preview"
    model: str = "gemini-2.5-flash-image"
    url_ttl_s: int = Field(default=3600, description="Lifetime of signed URLs in seconds")

    # Vertex AI and the Gemini Developer API.
    vertex_project: str | None = None
    vertex_location: str = "us-central1"
    vertex_api_key: SecretStr | None = None
    vertex_access_token: SecretStr | None = None
    vertex_base_url: str | None = None
    vertex_api_version: str = "v1"
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    request_timeout_s: float = 120.0

    # Retries (owned by Stencil; the SDK's own retries stay off).
    # 10: with 30% of calls failing, 200 items all succeed with probability 0.999 (0.86 at 6)
    max_attempts: int = Field(default=10, description="Attempts per item for retryable failures")
    no_image_retries: int = Field(default=1, description="Extra tries after a 200 without image")
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0

    # Scheduling.
    window_initial: float = 4.0
    window_ceiling: float = 256.0
    rpm_ceiling: float | None = Field(default=None, description="Optional requests per minute cap")
    prefetch_slack: int = 2
    lease_s: float = 60.0
    dispatch_lease_s: float = 120.0
    tick_s: float = 0.1
    handoff: bool = Field(default=True, description="Finishing workers take the next item directly")
    auth_failure_limit: int = 3

    # The guarded fetcher: hosts admitted although not global (tests only).
    fetch_allow_hosts: list[str] = Field(default_factory=list)
    fetch_max_bytes: int = 20 * 1024 * 1024
    fetch_timeout_s: float = 20.0

    # The HTTP API (`stencil serve`) and its webhooks.
    api_public_url: str | None = Field(default=None, description="Base of links the API returns")
    api_files_secret: SecretStr | None = Field(
        default=None, description="Signs /v1/files links (default: a secret in the data dir)"
    )
    api_submits_per_minute: int = Field(default=60, description="Submits per API key per minute")
    webhook_allow_loopback: bool = Field(
        default=False, description="Allow webhooks to http(s) loopback URLs (development, tests)"
    )
    webhook_timeout_s: float = 15.0
    # Standard Webhooks' example schedule: the wait before each attempt (about 3 days in all)
    webhook_retry_s: list[float] = Field(
        default_factory=lambda: [0.0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    )
    # Drop-in compatibility (api/compat): a fal app, Replicate model or 302.AI route name ->
    # Stencil's model (STENCIL_COMPAT_MODELS, JSON); a name not in the table answers 404.
    compat_models: dict[str, str] = Field(
        default_factory=lambda: {
            "fal-ai/nano-banana": "gemini-2.5-flash-image",
            "fal-ai/nano-banana/edit": "gemini-2.5-flash-image",
            "fal-ai/gemini-25-flash-image": "gemini-2.5-flash-image",
            "fal-ai/gemini-25-flash-image/edit": "gemini-2.5-flash-image",
            "google/nano-banana": "gemini-2.5-flash-image",
            "google/gemini-2.5-flash-image": "gemini-2.5-flash-image",
            "gemini-2.5-flash-image-async": "gemini-2.5-flash-image",
            "gemini-2.5-flash-image-edit-async": "gemini-2.5-flash-image",
            "fal-ai/nano-banana-pro": "gemini-3-pro-image",
            "fal-ai/nano-banana-pro/edit": "gemini-3-pro-image",
            "fal-ai/gemini-3-pro-image-preview": "gemini-3-pro-image",
            "fal-ai/gemini-3-pro-image-preview/edit": "gemini-3-pro-image",
            "google/nano-banana-pro": "gemini-3-pro-image",
            "google/gemini-3-pro-image": "gemini-3-pro-image",
            "fal-ai/nano-banana-2": "gemini-3.1-flash-image",
            "fal-ai/nano-banana-2/edit": "gemini-3.1-flash-image",
            "google/nano-banana-2": "gemini-3.1-flash-image",
            "google/gemini-3.1-flash-image": "gemini-3.1-flash-image",
        }
    )

    @field_validator("url_ttl_s")
    @classmethod
    def _ttl_in_range(cls, value: int) -> int:
        if not 1 <= value <= MAX_URL_TTL_S:
            raise ValueError(f"must be between 1 and {MAX_URL_TTL_S} seconds (7 days)")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stencil.db').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str((self.data_dir / "output").resolve())

    @property
    def resolved_spool_dir(self) -> Path:
        """Paid images that storage would not take wait here (default ``<data dir>/spool``)."""
        return (self.spool_dir or self.data_dir / "spool").resolve()

    def ensure_dirs(self) -> None:
        """Create the embedded folders this configuration uses."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.embedded_broker:
            for name in ("in", "processed"):
                (self.broker_dir / name).mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
