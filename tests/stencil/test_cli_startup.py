"""The quick commands stay quick: what they import, and shell completion.

Timing belongs to `python -m bench.startup`; these tests pin the cause instead: the libraries
that made every command slow are not imported by `--help`, completion or the read commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli import ROOT, run_cli, stencil_env

HEAVY = ("sqlalchemy", "alembic", "celery", "kombu", "google.genai", "boto3", "botocore", "redis")
READ_ONLY_HEAVY = ("alembic", "celery", "kombu", "google.genai", "boto3", "botocore", "redis")

PROBE = """
import json, sys
from stencil.cli.app import app
try:
    app(sys.argv[1:], standalone_mode=False)
except (SystemExit, Exception):  # `poll` of an unknown id ends in NotFoundError: still counted
    pass
sys.stdout.flush()
loaded = sorted({m for m in sys.modules for h in HEAVY if m == h or m.startswith(h + ".")})
sys.stderr.write("\\nIMPORTED " + json.dumps(sorted({m.split(".")[0] for m in loaded})))
"""


def _imported(*args: str, env: dict[str, str]) -> set[str]:
    """Top-level names of the heavy libraries a command imported, run in a fresh process."""
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    marker = result.stderr.rsplit("IMPORTED ", 1)
    assert len(marker) == 2, result.stderr
    return set(json.loads(marker[1]))


def test_help_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    env = stencil_env(STENCIL_DATA_DIR=str(tmp_path / "data"))
    assert _imported("--help", env=env) == set()
    assert _imported("poll", "--help", env=env) == set()
    assert not (tmp_path / "data").exists()  # help touches nothing


def test_read_commands_on_a_current_database_skip_alembic_and_the_clients(tmp_path: Path) -> None:
    env = stencil_env(STENCIL_DATA_DIR=str(tmp_path / "data"))
    assert run_cli("ls", env=env).returncode == 0  # creates and migrates the embedded database
    for args in (["ls", "--json"], ["status", "--json"], ["poll", "b_nothing", "--json"]):
        imported = _imported(*args, env=env)
        assert "sqlalchemy" in imported  # the record is read with SQLAlchemy...
        assert not imported & {h.split(".")[0] for h in READ_ONLY_HEAVY}, (args, imported)


def test_bash_completion_completes_command_names() -> None:
    env = stencil_env(_STENCIL_COMPLETE="complete_bash", COMP_WORDS="stencil po", COMP_CWORD="1")
    result = subprocess.run(
        [sys.executable, "-m", "stencil"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.split() == ["poll"]


def test_completion_can_be_shown_for_bash() -> None:
    result = run_cli("--show-completion", "bash", env=stencil_env(SHELL="/bin/bash"))
    assert result.returncode == 0, result.stderr
    assert "_STENCIL_COMPLETE=complete_bash" in result.stdout
