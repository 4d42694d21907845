"""docker-compose.yml and the Dockerfile: valid offline, and the settings names are the code's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from stencil.cli.app import app
from stencil.settings import Settings
from tests.cli import ROOT, run_cli, stencil_env
from tests.services import unavailable

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NAME = re.compile(r"\bSTENCIL_[A-Z0-9_]+\b")


def compose_names() -> set[str]:
    """Every STENCIL_* name in the compose file: set in containers or read from the host."""
    return set(NAME.findall(COMPOSE.read_text(encoding="utf-8")))


def names_the_code_reads() -> set[str]:
    """The settings fields with their prefix, and the CLI options' environment variables."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = {prefix + field.upper() for field in Settings.model_fields}
    pending: list[Any] = [get_command(app)]  # Typer's own click: groups have .commands
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else list(envvar or []))
    return names


def test_every_stencil_name_in_compose_is_read_by_the_code() -> None:
    names = compose_names()
    assert names, "the compose file sets no STENCIL_* variable"
    unknown = names - names_the_code_reads()
    assert not unknown, f"docker-compose.yml sets names Stencil never reads: {sorted(unknown)}"


def test_compose_points_every_service_at_the_fleet_parts() -> None:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for service in ("migrate", "worker", "scheduler"):
        env = data["services"][service]["environment"]
        for name in ("DATABASE_URL", "BROKER_URL", "STORAGE_URL", "S3_ENDPOINT_URL"):
            assert f"STENCIL_{name}" in env, (service, name)


def test_compose_file_validates_offline() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose is not installed (Debian: apt-get install docker-compose)")
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_image_runs_as_a_non_root_user() -> None:
    users = [arg for op, arg in _instructions() if op == "USER"]
    assert users, "the Dockerfile sets no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_image_healthcheck_is_a_command_that_passes_on_a_healthy_setup(tmp_path: Path) -> None:
    checks = [arg for op, arg in _instructions() if op == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json.loads(checks[0].split("CMD", 1)[1].strip())
    assert command[0] == "stencil"
    result = run_cli(*command[1:], env=stencil_env(STENCIL_DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        "settings",
        "database",
        "broker",
    ]


def test_image_copies_every_package_the_project_installs() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {arg.split()[0].rstrip("/") for op, arg in _instructions() if op == "COPY"}
    assert packages <= copied, f"the image would miss {sorted(packages - copied)}"
