"""What an exposure report may add: exposure counts drive alarms and rollbacks, so a report
is bounded like any input from outside.

- Only series the environment can have: a flag of its current version (or of the version a
  rollout is leaving) with one of its variants or an error code, or an unknown flag with
  ``error:FLAG_NOT_FOUND`` (an app asking for a flag that is not there), at most
  :data:`MAX_UNKNOWN_FLAGS` of those per report. Anything else is ignored and counted as
  such in the answer, so a forged report cannot invent series.
- At most :data:`REPORTS_PER_MINUTE` reports per agent key and minute (429 beyond).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from fastapi import HTTPException

from sluicegate.errors import NotFoundError
from sluicegate.flags.evaluator import ErrorCode
from sluicegate.store import Store

__all__ = ["MAX_UNKNOWN_FLAGS", "REPORTS_PER_MINUTE", "ExposureGuard"]

MAX_UNKNOWN_FLAGS = 100
REPORTS_PER_MINUTE = 600  # agents report every 10 s by default; 0.2 s is 300 a minute
_ERRORS = frozenset(f"error:{code.value}" for code in ErrorCode)


class ExposureGuard:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: dict[tuple[str, int], dict[str, frozenset[str]]] = {}
        self._recent: dict[tuple[str, str], deque[float]] = {}

    def admit(self, env: str, key: str, now: float | None = None) -> None:
        """429 when ``key`` sent too many reports to ``env`` in the last minute."""
        clock = time.monotonic() if now is None else now
        window = self._recent.setdefault((env, key), deque())
        while window and window[0] <= clock - 60:
            window.popleft()
        if len(window) >= REPORTS_PER_MINUTE:
            raise HTTPException(
                429,
                f"agent key {key!r} sent more than {REPORTS_PER_MINUTE} reports to {env!r} "
                "in a minute",
                headers={"Retry-After": "10"},
            )
        window.append(clock)

    def keep(
        self, env: str, counts: Iterable[tuple[str, str, int]]
    ) -> tuple[list[tuple[str, str, int]], int]:
        """The counts the environment can have, and how many were ignored."""
        known = self._variants(env)
        kept: list[tuple[str, str, int]] = []
        unknown: set[str] = set()
        ignored = 0
        for flag, variant, count in counts:
            variants = known.get(flag)
            if variants is not None:
                ok = variant in variants or variant in _ERRORS
            else:
                ok = variant == f"error:{ErrorCode.FLAG_NOT_FOUND.value}" and (
                    flag in unknown or len(unknown) < MAX_UNKNOWN_FLAGS
                )
                if ok:
                    unknown.add(flag)
            if ok:
                kept.append((flag, variant, count))
            else:
                ignored += 1
        return kept, ignored

    def _variants(self, env: str) -> dict[str, frozenset[str]]:
        """Flag → variants of the versions ``env`` serves now (compiled once per version)."""
        versions: list[int] = []
        current = self.store.flags.environment(env).current_version
        if current is not None:
            versions.append(current)
        rollout = self.store.flag_rollouts.active_for(env)
        if rollout is not None:
            versions += [rollout.from_version, rollout.to_version]
        merged: dict[str, set[str]] = {}
        for number in versions:
            for flag, variants in self._of_version(env, number).items():
                merged.setdefault(flag, set()).update(variants)
        return {flag: frozenset(v) for flag, v in merged.items()}

    def _of_version(self, env: str, number: int) -> dict[str, frozenset[str]]:
        cached = self._known.get((env, number))
        if cached is None:
            try:
                flags = self.store.flags.version(env, number).document.get("flags", {})
            except NotFoundError:
                flags = {}
            cached = {
                key: frozenset(flag.get("variants") or {"on": True, "off": False})
                for key, flag in flags.items()
            }
            self._known[(env, number)] = cached
        return cached
