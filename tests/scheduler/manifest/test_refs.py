"""Reference images: readers, pass-through, caching and de-duplication."""

from __future__ import annotations

import hashlib

from stencil.errors import FetchRefused
from tests.scheduler.manifest.conftest import Folder, jpeg_bytes, only, png_bytes

ROWS = "rows: [{k: a}, {k: b}, {k: c}]\n"


def manifest(images: list[str]) -> str:
    listed = "".join(f"    - '{image}'\n" for image in images)
    head = "version: 1\nname: t\nkey: '{{ k }}'\ntemplate:\n  prompt: p\n  images:\n"
    return head + listed + ROWS


class CountingReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.data


def test_each_distinct_source_is_read_once(folder: Folder) -> None:
    https = CountingReader(png_bytes())
    s3 = CountingReader(jpeg_bytes())
    folder.write(
        "m.yaml",
        manifest(
            [
                "https://cdn.example/a.png",
                "s3://bucket/{{ batch }}.jpg",
                "https://cdn.example/a.png",
            ]
        ),
    )
    plan = folder.load("m.yaml", https_fetcher=https, s3_reader=s3)
    assert https.calls == ["https://cdn.example/a.png"]
    assert s3.calls == ["s3://bucket/b_test.jpg"]
    assert len(plan.items) == 3
    assert [r.mime for r in plan.items[0].refs] == ["image/png", "image/jpeg", "image/png"]
    assert set(plan.ref_data) == {
        hashlib.sha256(png_bytes()).hexdigest(),
        hashlib.sha256(jpeg_bytes()).hexdigest(),
    }


def test_local_files_are_read_once(folder: Folder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    folder.image("a.png")
    reads: list[str] = []
    original = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self.name)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    folder.write("m.yaml", manifest(["a.png"]))
    plan = folder.load("m.yaml")
    assert reads.count("a.png") == 1 and len(plan.items) == 3


def test_same_bytes_under_two_names_are_stored_once(folder: Folder) -> None:
    folder.image("a.png")
    folder.image("copy.png")
    folder.write("m.yaml", manifest(["a.png", "copy.png"]))
    plan = folder.load("m.yaml")
    first, second = plan.items[0].refs
    assert first.digest == second.digest and first.key == second.key
    assert first.key == f"_refs/{first.digest}.png"
    assert list(plan.ref_data) == [first.digest]
    assert plan.ref_data[first.digest] == png_bytes()
    assert first.as_json() == {
        "digest": first.digest,
        "mime": "image/png",
        "key": first.key,
        "source": "a.png",
    }


def test_mime_comes_from_the_bytes_not_the_extension(folder: Folder) -> None:
    folder.image("photo.png", jpeg_bytes())
    folder.write("m.yaml", manifest(["photo.png"]))
    ref = folder.load("m.yaml").items[0].refs[0]
    assert ref.mime == "image/jpeg" and ref.key is not None and ref.key.endswith(".jpg")


def test_gs_uri_passes_through(folder: Folder) -> None:
    folder.write("m.yaml", manifest(["gs://bucket/dir/a.webp"]))
    plan = folder.load("m.yaml")
    ref = plan.items[0].refs[0]
    assert (ref.uri, ref.key, ref.size, ref.mime) == (
        "gs://bucket/dir/a.webp",
        None,
        0,
        "image/webp",
    )
    assert ref.digest == hashlib.sha256(b"gs://bucket/dir/a.webp").hexdigest()
    assert ref.as_json()["uri"] == "gs://bucket/dir/a.webp" and "key" not in ref.as_json()
    assert plan.ref_data == {}


def test_gs_uri_with_unknown_extension(folder: Folder) -> None:
    folder.write("m.yaml", manifest(["gs://bucket/a.gif"]))
    problems = folder.problems("m.yaml")
    assert len(problems) == 3 and all(".png" in p.message for p in problems)


def test_s3_without_reader(folder: Folder) -> None:
    folder.write("m.yaml", manifest(["s3://bucket/a.png"]))
    problem = folder.problems("m.yaml")[0]
    assert "S3 endpoint" in problem.message


def test_https_without_fetcher(folder: Folder) -> None:
    folder.write("m.yaml", manifest(["https://cdn.example/a.png"]))
    assert "guarded fetcher" in folder.problems("m.yaml")[0].message


def test_reader_errors_become_problems(folder: Folder) -> None:
    def refuse(url: str) -> bytes:
        raise FetchRefused(f"{url} resolves to a private address")

    folder.write("m.yaml", manifest(["https://10.0.0.1/a.png"]))
    problems = folder.problems("m.yaml", https_fetcher=refuse)
    assert [p.row for p in problems] == [0, 1, 2]
    assert all(p.field == "template.images[0]" and "private address" in p.message for p in problems)


def test_fetched_non_image(folder: Folder) -> None:
    folder.write("m.yaml", manifest(["https://cdn.example/a.png"]))
    problem = folder.problems("m.yaml", https_fetcher=lambda url: b"<html>")[0]
    assert "not a PNG, JPEG or WebP" in problem.message


def test_empty_rendered_image_is_skipped(folder: Folder) -> None:
    folder.image("a.png")
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ k }}'\ntemplate:\n  prompt: p\n  images: ['{{ photo }}']\n"
        "rows: [{k: a, photo: a.png}, {k: b, photo: ''}]\n",
    )
    items = folder.load("m.yaml").items
    assert [len(i.refs) for i in items] == [1, 0]


def test_missing_column_in_an_image_template(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ k }}'\ntemplate:\n  prompt: p\n  images: ['{{ photo }}']\n"
        "rows: [{k: a}]\n",
    )
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.images[0]" and "'photo'" in problem.message
