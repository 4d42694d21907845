"""The words people read after a run and in poll: counts, money, time, and what to do next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from stencil.cli.summary import (
    counts_line,
    duration,
    eta_line,
    money,
    next_commands,
    plain,
    poll_fields,
    run_summary,
    stopped_lines,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _view(**changes: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "request_id": "b_1",
        "name": "cats",
        "status": "running",
        "stop_reason": None,
        "total": 60,
        "ended": 10,
        "counts": {"succeeded": 10, "queued": 50},
        "cost_usd": 0.39,
        "reserved_usd": 0.0,
        "estimated_cost_usd": 2.34,
        "budget_usd": None,
        "provider": "vertex",
        "model": "gemini-2.5-flash-image",
        "created_at": (NOW - timedelta(seconds=100)).isoformat(),
        "finished_at": None,
    }
    view.update(changes)
    return view


@pytest.mark.parametrize(
    ("usd", "text"),
    [(0, "$0.00"), (0.39, "$0.39"), (0.039, "$0.039"), (0.0012, "$0.0012"), (1234.5, "$1,234.50")],
)
def test_money_keeps_the_digits_that_matter(usd: float, text: str) -> None:
    assert money(usd) == text


def test_counts_read_as_a_line_in_a_fixed_order() -> None:
    assert counts_line({"failed": 2, "succeeded": 16}) == "16 succeeded, 2 failed"
    assert counts_line({"no_image": 1, "budget_exhausted": 3}) == "1 no image, 3 budget exhausted"
    assert counts_line({}) == "no items"


def test_durations() -> None:
    assert duration(5.25) == "5.2s"
    assert duration(72) == "1m 12s"
    assert duration(3 * 3600 + 120) == "3h 02m"


def test_eta_at_the_pace_so_far_only_while_running() -> None:
    assert eta_line(_view(), NOW) == "about 8m 20s (at the pace so far)"  # 10 in 100 s, 50 left
    assert eta_line(_view(status="paused"), NOW) is None
    assert eta_line(_view(ended=0), NOW) is None


def test_poll_fields_show_counts_progress_cost_and_eta() -> None:
    fields = poll_fields(_view(), NOW)
    assert fields["counts"] == "10 succeeded, 50 queued"
    assert fields["progress"] == "10 of 60 ended (16%)"
    assert fields["cost"] == "$0.39" and fields["estimated"] == "$2.34"
    assert fields["eta"].startswith("about ")
    assert list(fields)[:3] == ["request_id", "name", "status"]


def test_next_commands_follow_what_happened() -> None:
    done = next_commands(_view(status="done", ended=60, counts={"succeeded": 58, "failed": 2}))
    commands = [c for c, _ in done]
    assert commands == [
        "stencil gallery b_1 --open",
        "stencil results b_1 --format csv",
        "stencil retry b_1 --failed",
    ]
    paused = [c for c, _ in next_commands(_view(status="paused"))]
    assert paused[0] == "stencil run b_1"
    clean = [c for c, _ in next_commands(_view(status="done", ended=60, counts={"succeeded": 60}))]
    assert not any("retry" in c for c in clean)


def test_stopped_lines_name_the_batch_how_far_and_how_to_continue() -> None:
    lines = stopped_lines(_view(status="paused"), signal_name="SIGINT")
    assert lines[0] == "SIGINT: stopped; batch b_1 is paused at 10 of 60 done, $0.39 spent"
    assert lines[-1] == "continue with: stencil run b_1"
    finished = stopped_lines(_view(status="done", ended=60), signal_name="SIGTERM")
    assert "already finished" in finished[0] and "stencil run" not in "".join(finished)


def test_user_data_is_inert_text() -> None:
    assert plain("[bold]x\x1b]0;owned\x07\u202e").plain == "[bold]x\\x1b]0;owned\\x07\\u202e"
    console = Console(width=200, record=True, color_system=None)
    rows = [
        {"key": "k\x1b[31m", "variant": 1, "status": "failed", "error": "400: [red]bad[/red]"},
    ]
    view = _view(status="done", ended=60, counts={"failed": 1})
    for line in run_summary(view, rows, elapsed_s=3, output="/data/output"):
        console.print(line, soft_wrap=True)
    text = console.export_text()
    assert "k\\x1b[31m" in text and "[red]bad[/red]" in text and "\x1b" not in text
    assert "stencil retry b_1 --failed" in text
