"""Process-wide logging set-up and redaction of secrets in log lines.

Sluicegate logs with the standard library under the ``sluicegate`` logger tree. A process
entry point (the CLI, the router, the agent) calls :func:`configure_logging` once; library
code only calls ``logging.getLogger(__name__)``. A process that starts another Sluicegate
process (the server its router, the router its workers) hands its :class:`LogSettings` on,
so ``sluice --log-level debug --log-json server`` logs the same way in every process.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LOG", "LEVELS", "JsonFormatter", "LogSettings", "configure_logging", "redact"]

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


@dataclass(frozen=True)
class LogSettings:
    """How a process logs: the level and whether as JSON lines."""

    level: str = "info"
    json: bool = False

    def argv(self) -> list[str]:
        """The ``sluice`` options that give a child the same settings (before its command)."""
        return ["--log-level", self.level, *(["--log-json"] if self.json else [])]

    def env(self) -> dict[str, str]:
        """The same for a child started without the CLI (a router worker)."""
        return {"SLUICE_LOG_LEVEL": self.level, "SLUICE_LOG_JSON": "1" if self.json else "0"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LogSettings:
        """What :meth:`env` handed on (defaults where unset)."""
        return cls(environ.get("SLUICE_LOG_LEVEL", "info"), environ.get("SLUICE_LOG_JSON") == "1")


DEFAULT_LOG = LogSettings()
"""Text lines at info: what a process does when told nothing else."""


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


def configure_logging(level: str = "info", json: bool = False, tag: str | None = None) -> None:
    """Send log records at ``level`` and above to stderr, as text lines or JSON lines;
    ``tag`` names the process in each line (``worker-1``: text before the logger's name,
    JSON as ``"tag"``).

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
    text = TEXT_FORMAT if tag is None else TEXT_FORMAT.replace("%(name)s", f"{tag} %(name)s")
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(text))
    if tag is not None:
        handler.addFilter(_Tag(tag))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OWNED, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    # Alembic narrates every plugin and context at INFO; the store logs the migration itself.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


class _Tag(logging.Filter):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.tag = self.tag
        return True


def redact(value: str) -> str:
    """A secret as it may appear in a log: its first 4 characters, then ``…``.

    Secrets shorter than 8 characters show nothing but ``…``: four characters of a short
    secret would give most of it away.
    """
    if len(value) < 8:
        return "…"
    return value[:4] + "…"
