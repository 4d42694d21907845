"""The review gallery: an HTML contact sheet per batch, with thumbnails and review marks."""

from __future__ import annotations

from stencil.gallery.build import Gallery, build_gallery, default_path, thumbs_dir_for

__all__ = ["Gallery", "build_gallery", "default_path", "thumbs_dir_for"]
