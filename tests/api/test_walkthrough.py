"""The README's HTTP walkthrough, run as written: its shell commands, parsed from README.md between
the http-walkthrough markers, with curl against `stencil serve` on the embedded default."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api._server import free_port
from tests.cli import ROOT
from tests.fleet import fleet_env

pytestmark = pytest.mark.slow
START, END = "<!-- http-walkthrough -->", "<!-- /http-walkthrough -->"


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(START) + len(START) : text.index(END)].strip()
    assert block.startswith("```sh") and block.endswith("```")
    return block.removeprefix("```sh").removesuffix("```").strip()


def documents(text: str) -> list[dict[str, Any]]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def _stop_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_http_walkthrough_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "manifests" / "http", tmp_path / "manifests" / "http")
    env = fleet_env(home=tmp_path / "home", STENCIL_API_PORT=str(free_port()))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = "set -euo pipefail\n" + walkthrough() + "\n"
    # files, not pipes: the server the script leaves running in the background holds them open
    with (tmp_path / "out.txt").open("w") as out_file, (tmp_path / "err.txt").open("w") as err_file:
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,
        )
        try:
            process.wait(timeout=240)
        finally:
            _stop_group(process.pid)
    out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert process.returncode == 0, f"{out}\n{err}"
    assert (tmp_path / "mug.png").read_bytes().startswith(b"\x89PNG")
    answers = documents(out)  # curl prints the bodies one after another
    items = next(a for a in answers if "results" in a)
    assert sorted(i["key"] for i in items["results"]) == ["mug-blue", "mug-red"]
    assert all(i["status"] == "succeeded" for i in items["results"])
    cancelled = answers[-1]
    assert cancelled["action"] == "cancel" and cancelled["request_id"].startswith("b_")
