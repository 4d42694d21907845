"""The google-genai client the baselines use, pointed at the emulator as Stencil's is."""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import errors, types

MODEL = "gemini-2.5-flash-image"
CONFIG = types.GenerateContentConfig(
    response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="1:1")
)


def make_client(base_url: str, token: str) -> genai.Client:
    """A Vertex-mode client with a static token, no SDK retries (as Stencil's)."""
    from google.oauth2.credentials import Credentials

    return genai.Client(
        vertexai=True,
        project="stencil-bench",
        location="us-central1",
        credentials=Credentials(token=token),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(base_url=base_url, timeout=30_000, retry_options=None),
    )


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, errors.APIError) and exc.code == 429


def has_image(response: Any) -> bool:
    for candidate in response.candidates or []:
        for part in (candidate.content and candidate.content.parts) or []:
            if part.inline_data is not None and part.inline_data.data:
                return True
    return False
