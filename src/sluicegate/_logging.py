"""Process-wide logging set-up and redaction of secrets in log lines.

Sluicegate logs with the standard library under the ``sluicegate`` logger tree. A process
entry point (the CLI, the router, the agent) calls :func:`configure_logging` once; library
code only calls ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import logging
import sys
from typing import Any

__all__ = ["LEVELS", "JsonFormatter", "configure_logging", "redact"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

# Marks the handler this module installed, so a second call replaces it instead of adding one.
_OWNED = "_sluicegate_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        created = _dt.datetime.fromtimestamp(record.created, tz=_dt.UTC)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return _json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "info", json: bool = False) -> None:
    """Send log records at ``level`` and above to stderr, as text lines or JSON lines.

    Calling it again replaces the previous set-up (no duplicate lines). Handlers installed
    by others (e.g. pytest's capture) are left alone. Raises ValueError for an unknown level.
    """
    try:
        numeric = LEVELS[level.strip().lower()]
    except KeyError:
        known = ", ".join(name for name in LEVELS if name != "warn")
        raise ValueError(f"unknown log level {level!r}; use one of {known}") from None
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _OWNED, True)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OWNED, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    # Alembic narrates every plugin and context at INFO; the store logs the migration itself.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def redact(value: str) -> str:
    """A secret as it may appear in a log: its first 4 characters, then ``…``.

    Secrets shorter than 8 characters show nothing but ``…``: four characters of a short
    secret would give most of it away.
    """
    if len(value) < 8:
        return "…"
    return value[:4] + "…"
