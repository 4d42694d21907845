"""Keys rendered from a manifest: row keys, and storage keys that cannot collide or escape.

A storage (output) key names an image; its sidecar is the key plus the sidecar suffix. Within a
batch every image and sidecar must be a file that no other key uses as a folder (``x`` and
``x/1.png`` cannot both exist). Top-level folders starting with ``_`` are Stencil's own
(``_refs/`` holds reference images, ``_galleries/`` review pages), so no output goes there.
"""

from __future__ import annotations

import re

from stencil.terminal import unsafe_char
from worker.sidecar import sidecar_key

DEFAULT_OUTPUT = "{{ batch }}/{{ key }}/{{ variant }}.png"
SIDECAR_SUFFIX = sidecar_key("")
MAX_STORAGE_KEY_BYTES = 1024  # S3's limit, which the sidecar's key must also meet
MAX_KEY_LENGTH = MAX_STORAGE_KEY_BYTES - len(SIDECAR_SUFFIX.encode())  # an output key, in bytes
# A folder store writes "<segment><.item id version><sidecar suffix>" through a temporary file
# ".<name>.<8 random>.tmp": 200 bytes leave room for all of it under the usual 255-byte limit.
MAX_SEGMENT_BYTES = 200
MAX_ROW_KEY_CHARS = 512  # a row's key
RESERVED_FOLDER_START = "_"
_BAD_SEGMENT = re.compile(r"(?:^|/)(?:\.{1,2})?(?:/|$)")


def _char_reason(text: str) -> str | None:
    found = unsafe_char(text)
    if found is None:
        return None
    if 0xD800 <= ord(found) <= 0xDFFF:
        return f"contains a lone surrogate ({found!r}), which is not valid Unicode text"
    if ord(found) < 0xA0:
        return f"must not contain control characters (found {found!r})"
    return f"must not contain bidirectional or separator characters (found {found!r})"


def row_key_reason(key: str) -> str | None:
    """Why a rendered row key is refused, or None."""
    if len(key) > MAX_ROW_KEY_CHARS:
        return f"is longer than {MAX_ROW_KEY_CHARS} characters ({len(key)})"
    return _char_reason(key)


def unsafe_key_reason(key: str) -> str | None:
    """Why a rendered storage key is unsafe, or None when it is a safe relative key."""
    if not key:
        return "is empty"
    reason = _char_reason(key)
    if reason:
        return reason
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_LENGTH:
        return f"is longer than {MAX_KEY_LENGTH} bytes ({size})"
    if key.startswith("/"):
        return "must be relative (it starts with '/')"
    if "\\" in key:
        return "must not contain a backslash"
    if _BAD_SEGMENT.search(key):
        segments = key.split("/")
        if ".." in segments or "." in segments:
            return "must not contain '.' or '..' segments"
        return "must not contain empty segments ('//' or a trailing '/')"
    segments = key.split("/")
    if segments[0].startswith(RESERVED_FOLDER_START):
        return (
            f"is in {segments[0] + '/'!r}: top-level folders starting with "
            f"{RESERVED_FOLDER_START!r} are Stencil's own (reference images, galleries)"
        )
    for segment in segments:
        if segment.startswith("."):
            return f"has a segment starting with '.' ({segment!r}), kept for temporary files"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"has a segment longer than {MAX_SEGMENT_BYTES} bytes"
    if key.lower().endswith(SIDECAR_SUFFIX):
        return f"ends in {SIDECAR_SUFFIX!r}, the suffix of the sidecar written beside each image"
    return None


class KeySpace:
    """The storage keys of one batch (images and their sidecars): each a file, never a folder."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}  # key -> who writes it
        self._folders: dict[str, str] = {}  # folder ("a/b") -> who first wrote under it

    def claim(self, key: str, owner: str) -> str | None:
        """Take ``key`` for ``owner``; or why it collides with a key taken earlier."""
        first = self._files.get(key)
        if first is not None:
            return f"duplicate output key {key!r}: {first} has the same key"
        sidecar = sidecar_key(key)
        folders = _folders(key)  # the sidecar sits in the same folders
        for path in (key, sidecar):
            if path in self._files:
                return f"output key {key!r} collides with {path!r} written by {self._files[path]}"
            if path in self._folders:
                return (
                    f"output key {key!r} is a folder of {self._folders[path]}'s output; "
                    "a path cannot be both"
                )
        for folder in folders:
            if folder in self._files:
                return (
                    f"output key {key!r} is inside {folder!r}, which {self._files[folder]} "
                    "writes as a file; a path cannot be both"
                )
        self._files[key] = owner
        self._files[sidecar] = f"{owner} (sidecar)"
        for folder in folders:
            self._folders.setdefault(folder, owner)
        return None


def _folders(path: str) -> list[str]:
    """Every folder above ``path``: ``a/b/c.png`` -> ``a``, ``a/b``."""
    found = []
    cut = path.find("/")
    while cut != -1:
        found.append(path[:cut])
        cut = path.find("/", cut + 1)
    return found
