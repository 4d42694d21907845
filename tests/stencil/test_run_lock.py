"""One `stencil run` per batch at a time, and `resume` can tell whether a run holds a batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stencil import run_lock
from stencil.settings import Settings


def test_a_held_batch_is_refused_to_a_second_run_and_released_after(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert not run_lock.is_held(settings, "b_one")
    with run_lock.hold(settings, "b_one"):
        assert run_lock.is_held(settings, "b_one")
        assert not run_lock.is_held(settings, "b_two")
        with pytest.raises(run_lock.BatchBusy, match="b_one"), run_lock.hold(settings, "b_one"):
            pass
    assert not run_lock.is_held(settings, "b_one")
    assert list((tmp_path / "runs").iterdir()) == []  # no lock files pile up


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    code = (
        "import sys, time; from stencil import run_lock; from stencil.settings import Settings\n"
        f"with run_lock.hold(Settings(data_dir={str(tmp_path)!r}), 'b_x'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert run_lock.is_held(settings, "b_x")
        with pytest.raises(run_lock.BatchBusy, match=f"pid {child.pid}"):
            with run_lock.hold(settings, "b_x"):
                pass
    finally:
        child.kill()
        child.wait()
    assert not run_lock.is_held(settings, "b_x")  # SIGKILL released it


def test_only_batch_ids_name_lock_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a batch id"):
        run_lock.lock_path(Settings(data_dir=tmp_path), "b_../../etc")
