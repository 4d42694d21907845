"""A service's model name (fal app, Replicate model, 302.AI route) -> Stencil's model, by the
``compat_models`` table in settings; a name not in the table is a 404, as those services answer."""

from __future__ import annotations

from api.problems import ApiProblem
from stencil.settings import Settings


def stencil_model(name: str, settings: Settings) -> str:
    model = settings.compat_models.get(name)
    if model is None:
        known = ", ".join(sorted(settings.compat_models))
        raise ApiProblem(404, f"no model named {name[:100]!r} here; models are {known}")
    return model
