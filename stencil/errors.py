"""Stencil's errors, one tree under :class:`StencilError`.

StencilError
 ├── InputError            bad input from the user (exit code 2)
 │    ├── ManifestError    a manifest with one or more problems, each with its place
 │    └── NotFoundError    no batch or item with that request id
 ├── ConfigError           settings that cannot work together
 └── StorageError          the image store failed (``permanent``: retrying will not help)
      ├── ObjectMissing     no object under this key
      └── StorageRefused    the store refuses the write until someone fixes it
"""

from __future__ import annotations

from dataclasses import dataclass


class StencilError(Exception):
    """Stencil failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InputError(StencilError):
    """The input is not valid."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem in a manifest, with its place."""

    file: str
    message: str
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        place = self.file
        if self.row is not None:
            place += f", row {self.row}"
        if self.field:
            place += f", field {self.field!r}"
        return f"{place}: {self.message}"


class ManifestError(InputError):
    """The manifest has problems; nothing was submitted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the manifest; nothing was submitted"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


class NotFoundError(InputError):
    """No batch or item has this request id."""


class ConfigError(StencilError):
    """The configuration cannot work."""


class StorageError(StencilError):
    """The image store failed."""

    permanent = False  # True: the same write will fail again until someone fixes the store


class ObjectMissing(StorageError):
    """No object is stored under this key."""


class StorageRefused(StorageError):
    """The image store refuses writes (no space, read-only, permission, path conflict, bucket or
    credentials refused) and will until someone fixes it."""

    permanent = True


class FetchRefused(InputError):
    """The guarded fetcher refused this URL."""
