"""The ``vertex`` and ``gemini`` providers: one implementation on google-genai, two clients.

- vertex: ``genai.Client(vertexai=True, project, location, credentials)``, with a static access
  token (``STENCIL_VERTEX_ACCESS_TOKEN``) or Application Default Credentials; or express mode
  with ``STENCIL_VERTEX_API_KEY`` (used when no access token is set).
- gemini: the Gemini Developer API with ``STENCIL_GEMINI_API_KEY``.

The SDK's own retries stay off (Stencil owns retries) and its timeout is
``request_timeout_s``. The client is made on first use, once per provider, and shared by threads.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pydantic
from google import genai
from google.genai import types

from models.statuses import AttemptState
from stencil.catalog import cost_micros
from stencil.errors import ConfigError
from stencil.settings import Settings
from worker.providers.base import ImageRequest, ImageResult
from worker.providers.classify import classify_error, classify_response
from worker.providers.finalise import UNREADABLE_ANSWER, estimated_tokens
from worker.providers.redact import Redactor, configured_secrets, make_redactor

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ClientFactory = Callable[[], genai.Client]
# What the SDK raises when a 200 answer is not the JSON it expects (it raises APIError otherwise).
UNREADABLE = (json.JSONDecodeError, pydantic.ValidationError)

# The SDK warns "<value> is not a valid FinishReason" with the answer's own text in the warning:
# that text is untrusted (it may echo a credential) and it is kept, bounded, in the result.
warnings.filterwarnings(
    "ignore", message=r"(?s).* is not a valid ", category=UserWarning, module=r"google\.genai\."
)


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value()) or None


def http_options(
    *, base_url: str | None, api_version: str | None, timeout_s: float
) -> types.HttpOptions:
    """SDK HTTP options: our base URL and timeout (milliseconds in the SDK), no SDK retries."""
    options: dict[str, Any] = {"timeout": max(1, round(timeout_s * 1000)), "retry_options": None}
    if base_url:
        options["base_url"] = base_url
    if api_version:
        options["api_version"] = api_version
    return types.HttpOptions(**options)


def _adc_credentials() -> Any:
    import google.auth
    from google.auth import exceptions as auth_errors

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])  # type: ignore[no-untyped-call]
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(
            "no Google credentials for the vertex provider: set STENCIL_VERTEX_ACCESS_TOKEN or "
            "STENCIL_VERTEX_API_KEY, or configure Application Default Credentials "
            "(gcloud auth application-default login)"
        ) from exc
    return credentials


def vertex_factory(settings: Settings) -> ClientFactory:
    """A client factory for Vertex AI; ConfigError now if the settings cannot work."""
    token = _secret(settings.vertex_access_token)
    key = _secret(settings.vertex_api_key)
    options = http_options(
        base_url=settings.vertex_base_url,
        api_version=settings.vertex_api_version,
        timeout_s=settings.request_timeout_s,
    )
    if token is None and key is not None:
        return lambda: genai.Client(vertexai=True, api_key=key, http_options=options)
    project = settings.vertex_project
    if not project:
        raise ConfigError(
            "the vertex provider needs STENCIL_VERTEX_PROJECT (the Google Cloud project id), "
            "or STENCIL_VERTEX_API_KEY for Vertex AI express mode"
        )
    location = settings.vertex_location

    def build() -> genai.Client:
        if token is not None:
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token=token)  # type: ignore[no-untyped-call]
        else:
            credentials = _adc_credentials()
        return genai.Client(
            vertexai=True,
            project=project,
            location=location,
            credentials=credentials,
            http_options=options,
        )

    return build


def gemini_factory(settings: Settings) -> ClientFactory:
    """A client factory for the Gemini Developer API; ConfigError now without a key."""
    key = _secret(settings.gemini_api_key)
    if key is None:
        raise ConfigError("the gemini provider needs STENCIL_GEMINI_API_KEY")
    options = http_options(
        base_url=settings.gemini_base_url, api_version=None, timeout_s=settings.request_timeout_s
    )
    return lambda: genai.Client(vertexai=False, api_key=key, http_options=options)


def build_contents(request: ImageRequest) -> types.Content:
    """One user turn: reference images first (inline bytes or gs:// URIs), then the prompt."""
    parts: list[types.Part] = []
    for ref in request.refs:
        if ref.data is not None:
            parts.append(types.Part.from_bytes(data=ref.data, mime_type=ref.mime))
        elif ref.uri is not None:
            parts.append(types.Part.from_uri(file_uri=ref.uri, mime_type=ref.mime))
        else:
            raise ValueError(f"reference image {ref.digest} has neither bytes nor a URI")
    parts.append(types.Part.from_text(text=request.prompt))
    return types.Content(role="user", parts=parts)


def build_config(request: ImageRequest, *, send_labels: bool) -> types.GenerateContentConfig:
    """Ask for an image only, with the ratio and size when set (labels on Vertex only)."""
    image_config: dict[str, str] = {}
    if request.aspect_ratio:
        image_config["aspect_ratio"] = request.aspect_ratio
    if request.image_size:
        image_config["image_size"] = request.image_size
    return types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=types.ImageConfig(**image_config) if image_config else None,
        labels=dict(request.labels) if send_labels and request.labels else None,
    )


class GenaiProvider:
    """Generates images through google-genai (Vertex AI or the Gemini Developer API)."""

    def __init__(
        self,
        name: str,
        factory: ClientFactory,
        *,
        send_labels: bool,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        self.name = name
        self._factory = factory
        self._send_labels = send_labels
        self._redact: Redactor = make_redactor(secrets)
        self._client: genai.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> GenaiProvider:
        """The ``vertex`` or ``gemini`` provider for these settings (ConfigError if unusable)."""
        secrets = configured_secrets(settings)
        if name == "vertex":
            return cls(name, vertex_factory(settings), send_labels=True, secrets=secrets)
        if name == "gemini":
            # The Gemini Developer API has no request labels (they are a Vertex billing feature).
            return cls(name, gemini_factory(settings), send_labels=False, secrets=secrets)
        raise ConfigError(f"GenaiProvider serves 'vertex' or 'gemini', not {name!r}")

    def client(self) -> genai.Client:
        """The shared SDK client, made on first use."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def generate(self, request: ImageRequest) -> ImageResult:
        refusal = model_refusal(request.model)
        if refusal is not None:
            return ImageResult(
                state=AttemptState.invalid, error_status="INVALID_MODEL", message=refusal
            )
        client = self.client()
        contents = build_contents(request)
        config = build_config(request, send_labels=self._send_labels)
        try:
            response = client.models.generate_content(
                model=request.model, contents=contents, config=config
            )
        except UNREADABLE as exc:
            return self._unreadable(request, exc)
        except Exception as exc:
            result = classify_error(exc, model=request.model, redact=self._redact)
            if result is None:
                raise
            return result
        return classify_response(response, model=request.model, redact=self._redact)

    def _unreadable(self, request: ImageRequest, exc: Exception) -> ImageResult:
        """A 200 whose body is not a readable answer. Google bills a 200, so the attempt costs
        the estimate; it is `no_image` (retried at most STENCIL_NO_IMAGE_RETRIES times), not
        transient: a retry may pay again."""
        prompt, output = estimated_tokens(request)
        detail = " ".join(str(exc).splitlines()[:2])[:200]
        return ImageResult(
            state=AttemptState.no_image,
            http_code=200,
            prompt_tokens=prompt,
            output_tokens=output,
            cost_micros=cost_micros(request.model, prompt_tokens=prompt, output_tokens=output),
            finish_reason=UNREADABLE_ANSWER,
            message=self._redact(
                f"the answer (HTTP 200) could not be read ({type(exc).__name__}: {detail}); "
                "its cost is taken as the estimate"
            ),
        )


def model_refusal(model: str) -> str | None:
    """Why the SDK would refuse this model id before calling (it raises a bare ValueError), or
    None. Google answers for every other id (404 for an unknown one)."""
    if not model:
        return "the model id is empty; no call was made"
    if ".." in model or "?" in model or "&" in model:
        return f"the model id {model!r} is not valid (no '..', '?' or '&'); no call was made"
    return None
