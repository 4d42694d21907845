"""Drop-in compatibility: fal's queue, Replicate's predictions and 302.AI's async routes as thin
routers over the same submission, record and storage as ``/v1`` (a request there is a batch of
``num_images`` items, visible through ``/v1`` and ``stencil poll`` with the same id)."""

from __future__ import annotations

from fastapi import APIRouter

from api.compat import ai302, fal, replicate


def routers() -> list[APIRouter]:
    """In mounting order: fal's catch-all ``/{owner}/{alias}`` routes come last, after ``/v1``."""
    return [replicate.router, ai302.router, fal.router]
