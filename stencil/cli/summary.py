"""What people read at the end of a run and in poll: counts as words, money, time, what to do next.

Plain functions from a batch view (``stencil.views.batch_view``) to text and small Rich tables;
user data (names, keys, errors) is shown as text, never as markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from stencil.terminal import printable

STATUS_ORDER = (
    "succeeded",
    "failed",
    "blocked",
    "no_image",
    "budget_exhausted",
    "cancelled",
    "running",
    "dispatched",
    "waiting",
    "queued",
)
PROBLEMS_SHOWN = 10


def plain(value: object) -> Text:
    """User data as inert text: no markup, terminal controls shown as escapes."""
    return Text(printable(value))


def money(usd: float) -> str:
    """Dollars with cents, and more digits only where they matter ($0.39, $0.039, $12.50)."""
    text = f"{usd:,.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def counts_line(counts: dict[str, int]) -> str:
    """``16 succeeded, 2 failed`` (known statuses in a fixed order, then any others)."""
    order = [s for s in STATUS_ORDER if counts.get(s)] + sorted(
        s for s in counts if s not in STATUS_ORDER and counts[s]
    )
    return ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in order) or "no items"


def progress_line(view: dict[str, Any]) -> str:
    total, ended = view["total"], view["ended"]
    share = f" ({100 * ended // total}%)" if total else ""
    return f"{ended} of {total} ended{share}"


def eta_line(view: dict[str, Any], now: datetime | None = None) -> str | None:
    """Time left at the average pace since submit, for a running batch with some items ended."""
    total, ended = view["total"], view["ended"]
    if view["status"] != "running" or not 0 < ended < total:
        return None
    now = now or datetime.now(UTC)
    created = datetime.fromisoformat(view["created_at"])
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    elapsed = (now - created).total_seconds()
    if elapsed <= 0:
        return None
    return f"about {duration(elapsed / ended * (total - ended))} (at the pace so far)"


def poll_fields(view: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A batch view for `stencil poll`'s text form: counts as a line, cost, progress, ETA."""
    cost = money(view["cost_usd"])
    if view.get("reserved_usd"):
        cost += f" (+{money(view['reserved_usd'])} reserved for calls in flight)"
    shown: dict[str, Any] = {
        "request_id": view["request_id"],
        "name": view.get("name"),
        "status": view["status"],
    }
    if view.get("stop_reason"):
        shown["stop_reason"] = view["stop_reason"]
    shown["counts"] = counts_line(view["counts"])
    shown["progress"] = progress_line(view)
    eta = eta_line(view, now)
    if eta:
        shown["eta"] = eta
    shown["cost"] = cost
    shown["estimated"] = money(view["estimated_cost_usd"])
    if view.get("budget_usd") is not None:
        shown["budget"] = money(view["budget_usd"])
    for key in ("provider", "model", "priority", "created_at", "finished_at", "note"):
        if view.get(key) is not None:
            shown[key] = view[key]
    return shown


def next_commands(view: dict[str, Any]) -> list[tuple[str, str]]:
    """The commands worth trying after a run, each with why."""
    batch, counts = view["request_id"], view["counts"]
    steps: list[tuple[str, str]] = []
    if view["ended"] < view["total"] and view["status"] in ("paused", "stopped", "running"):
        steps.append((f"stencil run {batch}", "continue the batch"))
    if counts.get("succeeded"):
        steps.append((f"stencil gallery {batch} --open", "review the images"))
        steps.append((f"stencil results {batch} --format csv", "one line per item, with URLs"))
    retry = {"failed": "--failed", "blocked": "--blocked", "no_image": "--no-image"}
    for status, flag in retry.items():
        if counts.get(status):
            steps.append(
                (
                    f"stencil retry {batch} {flag}",
                    f"try the {counts[status]} {status.replace('_', ' ')} again",
                )
            )
    if counts.get("budget_exhausted"):
        steps.append(
            (
                f"stencil retry {batch}",
                f"run the {counts['budget_exhausted']} items the budget did not cover",
            )
        )
    return steps


def run_summary(
    view: dict[str, Any], rows: list[dict[str, Any]], *, elapsed_s: float, output: str
) -> list[Text]:
    """The end of `stencil run`: a small table, the items that did not succeed, next commands.

    Lines to print with ``soft_wrap=True``: ids, paths and commands are never cut or wrapped by
    us, so they can be copied whole.
    """
    name = f" ({view['name']})" if view.get("name") else ""
    cost = money(view["cost_usd"])
    if view.get("estimated_cost_usd") is not None:
        cost += f" (estimated {money(view['estimated_cost_usd'])})"
    fields: list[tuple[str, str]] = [
        ("batch", f"{view['request_id']}{name}"),
        ("status", view["status"]),
        ("items", counts_line(view["counts"])),
        ("cost", cost),
        ("time", duration(elapsed_s)),
        ("output", output),
    ]
    if view.get("stop_reason"):
        fields.append(("stopped", view["stop_reason"]))
    if view.get("note"):
        fields.append(("note", view["note"]))
    width = max(len(label) for label, _ in fields)
    lines = [
        Text.assemble((label.ljust(width), "bold"), "  ", plain(value)) for label, value in fields
    ]
    problems = [r for r in rows if r["status"] != "succeeded"]
    if problems:
        lines += [Text(""), Text(f"not succeeded ({len(problems)}):")]
        shown = problems[:PROBLEMS_SHOWN]
        labels = [f"{r['key']} #{r['variant']}" for r in shown]
        label_w = max(len(label) for label in labels)
        status_w = max(len(r["status"]) for r in shown)
        for label, row in zip(labels, shown, strict=True):
            line = Text("  ")
            line.append_text(plain(label.ljust(label_w)))
            line.append(f"  {row['status'].ljust(status_w)}  ")
            line.append_text(plain(row["error"] or ""))
            lines.append(line)
        if len(problems) > PROBLEMS_SHOWN:
            more = len(problems) - PROBLEMS_SHOWN
            lines.append(Text(f"  ... {more} more: stencil results {view['request_id']}"))
    steps = next_commands(view)
    if steps:
        lines += [Text(""), Text("next:")]
        command_w = max(len(command) for command, _ in steps)
        for command, why in steps:
            lines.append(Text.assemble(f"  {command.ljust(command_w)}  ", (f"# {why}", "dim")))
    return lines


def stopped_lines(view: dict[str, Any], *, signal_name: str, left_running: int = 0) -> list[str]:
    """What `stencil run` prints when a signal stopped it: the batch, how far it got, and the
    command that continues it."""
    batch = view["request_id"]
    where = f"{view['ended']} of {view['total']} done, {money(view['cost_usd'])} spent"
    if view["ended"] >= view["total"]:
        return [
            f"{signal_name}: batch {batch} had already finished ({where})",
            f"see: stencil results {batch}",
        ]
    lines = [f"{signal_name}: stopped; batch {batch} is {view['status']} at {where}"]
    if left_running:
        lines.append(
            f"the worker is finishing {left_running} call(s) already paid for, "
            "records them and exits by itself"
        )
    lines.append(f"continue with: stencil run {batch}")
    return lines
