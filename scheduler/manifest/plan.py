"""What a checked manifest becomes: a :class:`Plan` of :class:`ItemSpec`, ready to insert."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_PRIORITY = 0  # batches compete on equal terms unless a manifest says otherwise


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    """Options from the command line: top-level options of a CSV manifest; overrides for YAML."""

    name: str | None = None
    model: str | None = None
    provider: str | None = None
    budget_usd: float | None = None
    output: str | None = None
    priority: int | None = None
    reuse_scope: str | None = None  # the HTTP API's tenant: reuse stays within it


@dataclass(frozen=True, slots=True)
class ResolvedRef:
    """One reference image, read, sniffed and hashed (or a gs:// URI passed through)."""

    digest: str  # sha256 hex of the bytes; for gs:// the sha256 of the URI string
    mime: str  # image/png | image/jpeg | image/webp
    size: int  # bytes (0 for gs://)
    source: str  # what the manifest said (path or URL), for messages
    key: str | None  # storage key "_refs/<digest>.<ext>" for bytes we hold; None for gs://
    uri: str | None  # the gs:// URI, passed to the model as fileData; None otherwise
    # a chained reference ("item:KEY#N", scheduler/manifest/chains.py): the image of the item
    # (key, variant) of this manifest; digest, mime and key stay empty until it succeeds
    depends_on: tuple[str, int] | None = None
    place: tuple[str, int | None, str] | None = None  # (file, row, field) for problems

    def as_json(self) -> dict[str, Any]:
        """The form stored on ``items.refs``."""
        if self.depends_on is not None:  # submit adds "item": the dependency's item id
            key, variant = self.depends_on
            return {"source": self.source, "depends_on": {"key": key, "variant": variant},
                    "digest": self.digest or None, "mime": self.mime or None,
                    "key": self.key}  # fmt: skip
        out: dict[str, Any] = {"digest": self.digest, "mime": self.mime, "source": self.source}
        if self.uri is not None:
            out["uri"] = self.uri
        else:
            out["key"] = self.key
        return out


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One image to make: a rendered row and variant."""

    seq: int  # 0-based order in the manifest (row order, then variant)
    key: str  # rendered key
    variant: int  # 1..N
    row_label: str  # e.g. "products.csv line 4" or "rows[3]"
    prompt: str  # rendered prompt, surrounding whitespace stripped
    refs: tuple[ResolvedRef, ...]
    aspect_ratio: str | None
    image_size: str | None
    output_key: str  # rendered storage key
    fingerprint: str
    estimate_micros: int
    checks: dict[str, Any] | None = None  # automatic checks of the stored image (worker/checks)


@dataclass
class Plan:
    """A checked manifest: the batch's options and every item, nothing written yet."""

    batch_id: str
    name: str
    provider: str
    model: str
    priority: int  # 0-9, higher runs first; DEFAULT_PRIORITY when not given
    budget_micros: int | None
    source: str  # manifest path as given
    items: list[ItemSpec]
    ref_data: dict[str, bytes]  # digest -> bytes to upload under ResolvedRef.key
    warnings: list[str] = field(default_factory=list)
    estimated_micros: int = 0
    reuse_scope: str | None = None  # see SubmitOptions
