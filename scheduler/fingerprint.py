"""Item fingerprints: the identity of an image, for content-addressed reuse.

A fingerprint covers everything that shapes the image: provider (a preview placeholder must never
stand in for a real model's image), model, rendered prompt, reference digests in order, aspect
ratio, image size and variant. Keys and output paths are not part of it: moving an image does
not change it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

FINGERPRINT_VERSION = 1


def item_fingerprint(
    *,
    provider: str,
    model: str,
    prompt: str,
    ref_digests: Sequence[str],
    aspect_ratio: str | None,
    image_size: str | None,
    variant: int,
    scope: str | None = None,
) -> str:
    """The sha256 hex of a canonical JSON of the item's image-shaping inputs.

    ``scope`` keeps reuse within one owner: the HTTP API passes the tenant, so one tenant is
    never handed an image another tenant paid for. CLI batches have no scope (and the same
    fingerprints as before scopes existed)."""
    fields: dict[str, object] = {
        "v": FINGERPRINT_VERSION,
        "provider": provider,
        "model": model,
        "prompt": prompt,
        "refs": list(ref_digests),
        "aspect_ratio": aspect_ratio,
        "image_size": image_size,
        "variant": variant,
    }
    if scope is not None:
        fields["scope"] = scope
    canonical = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
