"""The `procrun ps` table, and the figures `procrun top` shows the same way. Pure."""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing would cost `procrun ps` ~5 ms
if TYPE_CHECKING:
    from typing import Any


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return "-"


def table(rows: list[dict[str, Any]]) -> str:
    """The `procrun ps` table. Pure."""
    head = ("NAME", "PID", "STATE", "UPTIME", "RESTARTS", "PORT", "READY", "CPU", "RSS", "DIR")
    body = [(r["name"], str(r["pid"] or "-"), r["state"], duration(r["uptime"]), str(r["restarts"]),
             str(r["port"] or "-"), "-" if r.get("ready_after") is None else f"{r['ready_after']:.2f}s",
             "-" if r["cpu_percent"] is None else f"{r['cpu_percent']:.1f}%",
             size(r["rss"]), r["cwd"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body])
