"""The embedded default, no services: `stencil run` of the catalog example, then poll/results."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from PIL import Image

from stencil.catalog import pixel_size
from tests.cli import ROOT, cli_json, run_cli
from tests.cli import stencil_env as stencil_env_vars

pytestmark = pytest.mark.slow
CATALOG = ROOT / "manifests" / "catalog" / "catalog.yaml"


def test_run_catalog_on_embedded_default(stencil_env: Path) -> None:
    result = run_cli("run", str(CATALOG), "--json", timeout=240)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "done"
    assert view["counts"] == {"succeeded": view["total"]}
    assert view["preview"] is True and "preview" in view["note"]
    assert view["total"] == len(view["results"]) > 0
    for row in view["results"]:
        path = Path(url2pathname(urlparse(row["url"]).path))
        assert path.is_file() and path.is_relative_to(stencil_env)
        # catalog/<batch id>/<sku>/<variant>.png: no other batch can write the same key
        assert path.relative_to(stencil_env / "output").parts[:2] == ("catalog", view["request_id"])
        with Image.open(path) as image:
            assert image.size == pixel_size("4:5")  # the catalog's aspect ratio
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        assert sidecar["request_id"] == row["request_id"]
        assert sidecar["preview"] is True

    batch = cli_json("poll", view["request_id"])
    assert batch["kind"] == "batch" and batch["ended"] == batch["total"]
    item_id = view["results"][0]["request_id"]
    item = cli_json("poll", item_id)
    assert item["status"] == "succeeded"
    assert item["images"][0]["content_type"] == "image/png"
    assert item["cost_usd"] == 0.0

    text = run_cli("poll", item_id)
    assert text.returncode == 0 and item_id in text.stdout

    results = run_cli("results", view["request_id"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(results.stdout)))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in view["results"]]

    listing = cli_json("ls")
    assert listing[0]["request_id"] == view["request_id"]

    waited = run_cli("wait", view["request_id"], "--json")
    assert waited.returncode == 0 and json.loads(waited.stdout)["status"] == "done"
    lines = run_cli("results", view["request_id"], "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [r["request_id"] for r in rows]


def test_resubmit_reuses_every_row(stencil_env: Path) -> None:
    first = run_cli("run", str(CATALOG), "--json", timeout=240)
    assert first.returncode == 0, first.stderr
    again = cli_json("submit", str(CATALOG))
    assert again["reused"] == again["items"] > 0
    assert again["estimated_cost_usd"] == 0.0
    view = cli_json("poll", again["request_id"])
    assert view["counts"] == {"succeeded": again["items"]}
    forced = cli_json("submit", str(CATALOG), "--force", "--dry-run")
    assert forced["reused"] == 0


def test_bad_manifest_writes_nothing(stencil_env: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "version: 1\nname: bad\nkey: '{{ sku }}'\ncolour: red\n"
        "template:\n  prompt: 'a {{ name }}'\n  aspect_ratio: '7:3'\n"
        "rows:\n  - {sku: A, name: x}\n  - {sku: A, name: y}\n  - {sku: B}\n"
    )
    result = run_cli("submit", str(manifest))
    assert result.returncode == 2
    err = result.stderr
    assert "colour" in err and "7:3" in err and "row 1" in err and "row 2" in err
    assert "Traceback" not in err
    assert cli_json("ls") == []


LISTINGS = ROOT / "manifests" / "listings" / "listings.yaml"


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_run_in_an_empty_directory_writes_only_into_the_data_dir(
    stencil_env: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "empty"
    home = tmp_path / "user-home"
    cwd.mkdir()
    home.mkdir()
    env = stencil_env_vars(STENCIL_DATA_DIR=str(cwd / ".stencil"), HOME=str(home))
    result = run_cli("run", str(LISTINGS), env=env, cwd=cwd, timeout=240)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in cwd.iterdir()] == [".stencil"]
    assert _tree(home) == []  # nor in the user's home
    assert (cwd / ".stencil" / "broker" / "control").is_dir()  # the broker's exchange tables


def test_a_normal_run_prints_only_stencils_own_lines(stencil_env: Path) -> None:
    result = run_cli("run", str(LISTINGS), timeout=240)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batch b_"), result.stderr
    # the summary is a small table and the next commands, not a dict
    out = result.stdout
    assert "{'" not in out
    batch_id = lines[0].split()[1].rstrip(":")
    assert re.search(r"items\s+5 succeeded", out)
    assert re.search(r"cost\s+\$0\.00", out)
    assert re.search(rf"output\s+{re.escape(str(stencil_env))}", out)
    assert f"stencil gallery {batch_id} --open" in out
    assert f"stencil results {batch_id}" in out
    assert "retry" not in out  # nothing failed
