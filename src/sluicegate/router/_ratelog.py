"""Warnings that come in floods (refused connections, skipped health checks), logged as one
line now and then with the count of those left out."""

from __future__ import annotations

import logging

__all__ = ["LOG_EVERY", "RateLimitedLog"]

LOG_EVERY = 10.0


class RateLimitedLog:
    """``warn(key, message)``: logged now if ``key`` was not logged in the last LOG_EVERY
    seconds, else counted and mentioned by the next line for ``key``."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, key: str, message: str, now: float) -> None:
        last = self._last.get(key)
        if last is not None and now - last < LOG_EVERY:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        quiet = self._quiet.pop(key, 0)
        self._last[key] = now
        more = f" ({quiet} more since the last such line)" if quiet else ""
        self.log.warning("%s%s", message, more)
