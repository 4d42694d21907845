"""Collects every problem of a manifest, so all of them are reported at once."""

from __future__ import annotations

from stencil.errors import ManifestError, Problem


class Problems:
    """A list of :class:`Problem` that raises :class:`ManifestError` when asked and not empty."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(
        self, file: str, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        self.items.append(Problem(file=file, message=message, row=row, field=field))

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ManifestError(list(self.items))
