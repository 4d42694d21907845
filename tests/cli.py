"""Run the real `stencil` command in a child process, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def stencil_env(**extra: str) -> dict[str, str]:
    """This process's environment (STENCIL_* included) plus ``extra``."""
    env = {k: v for k, v in os.environ.items()}
    env.setdefault("NO_GCE_CHECK", "true")
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stencil", *args],
        env=env or stencil_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        check=False,
    )


def cli_json(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    result = run_cli(*args, "--json", env=env, timeout=timeout)
    assert result.returncode == 0, f"stencil {' '.join(args)} failed:\n{result.stderr}"
    return json.loads(result.stdout)
