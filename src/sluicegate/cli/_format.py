"""Small formatting helpers shared by the CLI's commands."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["when"]


def when(ts: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
