"""One rendering of a live view per key and interval, however many browsers watch it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["Shared"]


class Shared:
    """N open tabs cost the store and the router what one does: a rendering younger than
    ``max_age`` seconds is handed out again. (Two streams asking at the same moment may
    both render: harmless, and no lock is bound to an event loop.)"""

    def __init__(self, max_age: float, max_keys: int = 256) -> None:
        self.max_age, self.max_keys = max_age, max_keys
        self._done: dict[str, tuple[float, str]] = {}

    async def get(self, key: str, now: float, make: Callable[[], Awaitable[str]]) -> str:
        done = self._done.get(key)
        if done is not None and 0 <= now - done[0] < self.max_age:
            return done[1]
        html = await make()
        if key not in self._done and len(self._done) >= self.max_keys:
            self._done.clear()  # deployments come and go: forget old keys
        self._done[key] = (now, html)
        return html
