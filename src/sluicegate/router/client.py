"""A typed client of the router's admin API: how the control plane drives a router process.

Errors come back as Sluicegate errors: an unreachable router is a ``RouterUnavailableError``
(temporary), a refused change a ``SpecError``/``NotFoundError``/``ConflictError`` carrying the
router's own message. A weight change counts as applied only when the router answers with
the weights now in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from sluicegate.errors import RouterUnavailableError, SluicegateError, error_from_response

__all__ = ["RouterClient"]


class RouterClient:
    """Async client for one router's admin API (``http://127.0.0.1:9900`` by default)."""

    def __init__(
        self,
        admin_url: str | None,
        token: str | None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``admin_url`` None: not pointed at a router yet (calls raise
        RouterUnavailableError until :meth:`retarget`)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    def retarget(self, admin_url: str) -> None:
        """Point this client at a router started again elsewhere: whoever holds it keeps
        holding the same object (no re-wiring after a restart)."""
        self.admin_url = admin_url.rstrip("/")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self.admin_url is None:
            raise RouterUnavailableError("the router is not running")
        try:
            r = await self._http.request(method, self.admin_url + path, json=body)
        except httpx.HTTPError as exc:
            raise RouterUnavailableError(
                f"router admin API at {self.admin_url} did not answer: {exc!r}"
            ) from exc
        if r.status_code < 300:
            return r.json() if r.content else None
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text.strip()}
        raise error_from_response(
            r.status_code,
            data,
            f"router {method} {path}",
            transient=RouterUnavailableError,
            auth_hint=" (the router refused the admin token)",
        )

    async def healthy(self) -> bool:
        try:
            await self._call("GET", "/healthz")
        except RouterUnavailableError:
            return False
        return True

    async def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None = None
    ) -> dict[str, int]:
        """Set all groups of one action at once; returns the weights the router now applies."""
        data = await self._call(
            "PUT", f"/v1/listeners/{listener}/weights", {"weights": dict(weights), "rule": rule}
        )
        applied: dict[str, int] = data["weights"]
        expected = {**applied, **weights}
        if applied != expected:
            raise SluicegateError(f"router applied {applied}, not {dict(weights)}")
        return applied

    async def weights(self, listener: str) -> dict[str, int]:
        data = await self._call("GET", f"/v1/listeners/{listener}/weights")
        result: dict[str, int] = data["default"]
        return result

    async def set_flags(self, version: int, document: Mapping[str, Any]) -> list[str]:
        """Load a flag set for flag rules (every worker has it when this returns); returns
        its flag keys. A set that does not compile raises SpecError; the old one stays."""
        data = await self._call(
            "PUT", "/v1/flags", {"version": version, "document": dict(document)}
        )
        keys: list[str] = data["flags"]
        return keys

    async def flags(self) -> dict[str, Any]:
        """``{"version": N | None, "flags": [keys], "unmatched": {reason: count}}``."""
        result: dict[str, Any] = await self._call("GET", "/v1/flags")
        return result

    async def register(self, group: str, target: str) -> None:
        await self._call("POST", f"/v1/target-groups/{group}/targets", {"target": target})

    async def deregister(self, group: str, target: str, delay: float | None = None) -> None:
        query = "" if delay is None else f"?delay={delay:g}"
        await self._call("DELETE", f"/v1/target-groups/{group}/targets/{target}{query}")

    async def target_groups(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/v1/target-groups")
        return result

    async def config(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self._call("GET", "/v1/config"))["config"]
        return result

    async def apply_config(self, config: Mapping[str, Any]) -> int:
        """Replace the whole configuration; returns the router's new generation. A refused
        config (invalid, or a port that cannot be opened) raises SpecError; nothing changes."""
        data = await self._call("PUT", "/v1/config", dict(config))
        return int(data["generation"])

    async def check_config(self, config: Mapping[str, Any]) -> None:
        """Dry run of :meth:`apply_config`: validated and its new ports test-opened by the
        router, which changes nothing. Raises SpecError where apply_config would."""
        await self._call("PUT", "/v1/config?dry_run=1", dict(config))

    async def metrics(
        self,
        window: int = 60,
        listener: str | None = None,
        hist: bool = False,
        include_open: bool = False,
    ) -> dict[str, Any]:
        """Per-second series of the last ``window`` closed seconds (see docs/router.md); with
        ``include_open`` also the current second so far, marked ``"open": true``."""
        query = (
            f"?window={window}"
            + (f"&listener={listener}" if listener else "")
            + ("&hist=1" if hist else "")
            + ("&open=1" if include_open else "")
        )
        result: dict[str, Any] = await self._call("GET", f"/v1/metrics{query}")
        return result
