"""`stencil doctor`: one line per part, OK or what to do; non-zero exit when a part is wrong."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.liveness import Liveness
from stencil.doctor import FAIL, OK, SKIP, WARN, Report, judge_skew, run_checks
from stencil.emulator import EmulatorHandle
from stencil.masking import mask_url
from stencil.settings import Settings, get_settings
from tests.cli import run_cli
from tests.fleet import CANARY_TOKEN, Fleet, fleet_env, migrated_fleet
from tests.services import free_port

NAMES = [
    "settings",
    "database",
    "broker",
    "storage",
    "credentials",
    "model",
    "workers",
    "scheduler",
    "clock",
]


def _statuses(report: dict[str, Any] | Report) -> dict[str, str]:
    checks = report.as_json()["checks"] if isinstance(report, Report) else report["checks"]
    return {c["name"]: c["status"] for c in checks}


def _settings(env: dict[str, str], **changes: str) -> Settings:
    """The settings a process with this environment would read."""
    values = {**env, **changes}
    return Settings.model_validate(
        {k.removeprefix("STENCIL_").lower(): v for k, v in values.items() if k[:8] == "STENCIL_"}
    )


# ---- embedded default -------------------------------------------------------------------
def test_embedded_default_is_ok_with_a_warning_for_absent_processes(tmp_path: Path) -> None:
    home = tmp_path / "data"
    env = fleet_env(home=home)
    result = run_cli("doctor", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == NAMES
    expected = {name: OK for name in NAMES} | {"workers": WARN, "scheduler": WARN}
    assert _statuses(report) == expected
    assert "stencil worker" in report["checks"][NAMES.index("workers")]["fix"]
    # the storage probe is gone, and nothing was written outside the data dir
    assert not list((home / "output").rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]

    text = run_cli("doctor", env=env, cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        [expected[name].upper(), name] for name in NAMES
    ]


def test_heartbeats_make_workers_and_scheduler_alive(stencil_env: Path) -> None:
    assert _statuses(run_checks())["workers"] == WARN
    worker, scheduler = Liveness("worker"), Liveness("scheduler")
    assert worker.beat() and scheduler.beat()
    report = run_checks()
    assert _statuses(report)["workers"] == OK and _statuses(report)["scheduler"] == OK
    detail = next(c.detail for c in report.checks if c.name == "workers")
    assert detail.startswith("1 alive") and str(worker.pid) in detail
    worker.stop()
    scheduler.stop()  # a clean stop removes the row: no stale "last seen"
    report = run_checks()
    assert _statuses(report)["workers"] == WARN
    assert "last seen" not in next(c.detail for c in report.checks if c.name == "workers")
    assert report.ok


def test_checks_use_the_settings_given_not_the_process_settings(
    stencil_env: Path, tmp_path: Path
) -> None:
    other = Settings.model_validate({"data_dir": str(tmp_path / "other")})
    report = run_checks(settings=other)
    assert report.ok
    assert (tmp_path / "other" / "stencil.db").is_file()
    assert not stencil_env.exists()


def test_invalid_settings_are_one_failed_line(stencil_env: Path) -> None:
    result = run_cli("doctor", env=fleet_env(home=stencil_env, STENCIL_URL_TTL_S="0"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [result.stdout.strip()]
    assert result.stdout.startswith("FAIL  settings") and "STENCIL_URL_TTL_S: " in result.stdout


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    secrets = ["pg-s3cret-pw", "redis-s3cret-pw", "gemini-key-s3cret", "aws-s3cret-key"]
    port = free_port()
    env = fleet_env(
        home=tmp_path / "data",
        STENCIL_DATABASE_URL=f"postgresql://stencil:{secrets[0]}@127.0.0.1:{port}/db",
        STENCIL_BROKER_URL=f"redis://:{secrets[1]}@127.0.0.1:{port}/0",
        STENCIL_PROVIDER="gemini",
        STENCIL_GEMINI_API_KEY=secrets[2],
        STENCIL_GEMINI_BASE_URL=f"http://127.0.0.1:{port}",
        AWS_SECRET_ACCESS_KEY=secrets[3],
    )
    text = run_cli("doctor", env=env, cwd=tmp_path)
    as_json = run_cli("doctor", "--json", env=env, cwd=tmp_path)
    assert text.returncode == 1 and as_json.returncode == 1
    for output in (text.stdout + text.stderr, as_json.stdout + as_json.stderr):
        assert not [s for s in secrets if s in output], output
        assert "stencil:***@127.0.0.1" in output and "gemini_api_key=***" in output
    report = json.loads(as_json.stdout)
    assert _statuses(report) == {
        "settings": OK,
        "database": FAIL,
        "broker": FAIL,
        "storage": OK,
        "credentials": FAIL,
        "model": OK,
        "workers": SKIP,
        "scheduler": SKIP,
        "clock": SKIP,
    }


def test_mask_url_hides_passwords_and_secret_parameters() -> None:
    assert mask_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("postgresql://h/db?sslmode=require&password=pw").endswith("password=***")
    assert mask_url("sqlite:////tmp/s.db") == "sqlite:////tmp/s.db"


def test_clock_skew_beyond_two_seconds_is_a_failure() -> None:
    assert judge_skew(0.4, uncertainty_s=0.01).status == OK
    behind = judge_skew(7.5, uncertainty_s=0.01)
    assert behind.status == FAIL and "7.50 s behind" in behind.detail and "NTP" in behind.fix
    assert "ahead of" in judge_skew(-9.0).detail


# ---- the fleet ----------------------------------------------------------------------------
@pytest.fixture
def fleet(
    tmp_path: Path,
    pg_url: str,
    redis_url: str,
    s3_bucket: tuple[str, str],
    s3_env: dict[str, str],
    emu: EmulatorHandle,
) -> Iterator[Fleet]:
    with migrated_fleet(
        tmp_path,
        pg_url=pg_url,
        redis_url=redis_url,
        s3=s3_bucket,
        s3_env=s3_env,
        emulator_url=emu.url,
    ) as fleet:
        fleet.start_worker(concurrency=2)
        fleet.start_scheduler()
        yield fleet


def _until_processes_beat(fleet: Fleet, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = fleet.cli("doctor", "--json")
        report = json.loads(result.stdout)
        statuses = _statuses(report)
        if statuses["workers"] == OK and statuses["scheduler"] == OK:
            return {"report": report, "code": result.returncode, "text": result.stdout}
        if time.monotonic() > deadline:
            raise AssertionError(f"no heartbeats: {report}\n{fleet.logs()}")
        time.sleep(0.5)


@pytest.mark.slow
def test_fleet_is_ok_and_each_broken_part_is_named(
    fleet: Fleet, emu: EmulatorHandle, s3_bucket: tuple[str, str]
) -> None:
    seen = _until_processes_beat(fleet)
    assert seen["code"] == 0 and seen["report"]["ok"] is True, seen["text"]
    assert _statuses(seen["report"]) == {name: OK for name in NAMES}
    assert CANARY_TOKEN not in seen["text"] and s3_bucket[1] in seen["text"]

    # a Redis URL on a closed port, through the real command: the broker line and exit 1
    closed = fleet.env | {"STENCIL_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run_cli("doctor", env=closed)
    assert result.returncode == 1
    broker = next(line for line in result.stdout.splitlines() if line.split()[1] == "broker")
    assert broker.startswith("FAIL") and "cannot reach redis://127.0.0.1" in broker
    assert "STENCIL_BROKER_URL" in broker
    others = [line for line in result.stdout.splitlines() if line.split()[1] != "broker"]
    assert all(line.startswith("OK") for line in others), result.stdout

    # the other parts broken one at a time (in this process: same checks, quicker)
    bucket = _settings(fleet.env, STENCIL_STORAGE_URL="s3://stencil-no-such-bucket/out")
    report = run_checks(settings=bucket)
    assert _failed(report) == {"storage": "stencil-no-such-bucket"}

    emu.configure(require_token="a-token-the-fleet-does-not-have")
    report = run_checks(settings=_settings(fleet.env))
    assert _failed(report) == {"credentials": "refused the credentials (HTTP 401"}
    emu.configure(require_token=None)

    report = run_checks(settings=_settings(fleet.env, STENCIL_MODEL="gemini-9-imaginary-image"))
    assert _failed(report) == {"credentials": "does not know", "model": "not in the price table"}

    gone = f"postgresql://stencil@127.0.0.1:{free_port()}/stencil"
    report = run_checks(settings=_settings(fleet.env, STENCIL_DATABASE_URL=gone))
    assert _failed(report) == {"database": "cannot connect"}
    assert {n for n, s in _statuses(report).items() if s == SKIP} == {
        "workers",
        "scheduler",
        "clock",
    }
    assert not report.ok


def _failed(report: Report) -> dict[str, str]:
    """The failed checks, each with the part of its detail the test expects (or the detail)."""
    wanted = {
        "storage": "stencil-no-such-bucket",
        "credentials": "refused the credentials (HTTP 401",
        "database": "cannot connect",
        "model": "not in the price table",
    }
    failed = {}
    for check in report.checks:
        if check.status == FAIL:
            hint = wanted.get(check.name, "")
            if check.name == "credentials" and "does not know" in check.detail:
                hint = "does not know"
            failed[check.name] = hint if hint in check.detail else check.detail
    return failed


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
