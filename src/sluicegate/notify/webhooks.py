"""The webhook engine: follow the event log, POST matching events, retry, give up loudly.

Each :meth:`WebhookEngine.tick`:

1. **Fan out.** Reads the events after its cursor (``events.since``) and, in one transaction,
   creates a pending delivery for every enabled webhook that wants each event and moves the
   cursor past them. A crash before the commit re-reads the same events; after it, the
   deliveries exist. Either way each (event, webhook) is queued exactly once.
2. **Dispatch.** Starts the due pending deliveries as background tasks, at most
   ``concurrency`` at once and ``per_webhook`` per webhook, and returns without waiting for
   them, so a slow or failing receiver never delays another one (or the next tick). With the
   default ``per_webhook=1`` a receiver gets events in log order while it answers; a retried
   delivery arrives after later events (order by the body's ``id``).

An attempt POSTs the event as JSON with ``X-Sluicegate-Event``, ``-Delivery`` (stable across
retries: receivers dedupe on it), ``-Timestamp`` and ``-Signature`` (see
:mod:`sluicegate.notify.signing`); a 2xx answer within ``timeout`` seconds delivers it, anything
else is retried by the :class:`~sluicegate.notify._rules.RetryPolicy`, and after the last
attempt the delivery is ``failed`` and a ``webhook.failed`` event is appended.

Delivery is **at least once**: the outcome is recorded after the POST, so a delivery in flight
when the server stops is sent again after the restart (with the same delivery id); nothing
else is lost or repeated. Time comes from the injected clock; tests drive ``tick``/``drain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from sluicegate import __version__
from sluicegate.clock import Clock
from sluicegate.errors import SluicegateError, SpecError
from sluicegate.notify._rules import (
    FAILED_KIND,
    RetryPolicy,
    after_attempt,
    body_of,
    redact,
    wants,
)
from sluicegate.notify._targets import check_target
from sluicegate.notify.signing import sign
from sluicegate.store import Delivery, Event, Store, Webhook

__all__ = ["TickResult", "WebhookEngine"]

log = logging.getLogger(__name__)
_MAX_ERROR = 300  # characters of a receiver's answer kept in last_error
_MAX_BATCHES = 10  # event batches fanned out per tick


@dataclass(frozen=True)
class TickResult:
    queued: int  # new deliveries created from the event log
    started: int  # attempts started (running in the background)


class WebhookEngine:
    """Delivers events to webhooks; ``run()`` in the server, ``tick()``/``drain()`` in tests."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        concurrency: int = 16,
        per_webhook: int = 1,
        batch: int = 500,
        allow_private: bool = False,
    ) -> None:
        """``allow_private``: also deliver to loopback, private and link-local addresses
        (``sluice server --allow-private-webhooks``); off, such a target fails its attempt."""
        self.allow_private = allow_private
        self.store = store
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.concurrency = concurrency
        self.per_webhook = per_webhook
        self.batch = batch
        self._inflight: dict[int, tuple[str, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()  # set when an attempt ends
        self._client: httpx.AsyncClient | None = None

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, interval: float = 0.5) -> None:
        """Tick every ``interval`` seconds, and at once when an attempt ends, until
        cancelled; errors are logged (the server runs ``tick``/``wait_next`` supervised)."""
        try:
            while True:
                try:
                    await self.tick()
                except SluicegateError as exc:  # e.g. the database is busy: next tick
                    log.warning("webhook engine: %s", exc)
                except Exception:  # a bug must not end webhook delivery for good
                    log.exception("webhook engine: tick failed")
                await self.wait_next(interval)
        finally:
            await self.close()

    async def wait_next(self, interval: float = 0.5) -> None:
        """Until ``interval`` has passed or an attempt ended (so a webhook's next delivery
        need not wait for the clock)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await self._wake.wait()
        self._wake.clear()

    async def tick(self) -> TickResult:
        queued = self.fan_out()
        return TickResult(queued, self.dispatch())

    async def drain(self) -> None:
        """Wait until every attempt started so far has finished and been recorded."""
        while self._inflight:
            await asyncio.gather(
                *(task for _, task in list(self._inflight.values())), return_exceptions=True
            )

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def close(self) -> None:
        """Cancel attempts in flight (they stay pending and are sent again: at least once)."""
        tasks = [task for _, task in self._inflight.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._inflight.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- 1. fan out -------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Queue deliveries for the events after the cursor; returns how many were queued."""
        deliveries = self.store.webhook_deliveries
        cursor = deliveries.cursor()
        if cursor is None:
            # First run: start where the oldest webhook starts, else at the log's end.
            cursor = min(
                (h.after_event_id for h in self.store.webhooks.list()),
                default=self.store.events.last_id(),
            )
            deliveries.set_cursor(cursor)
        queued = 0
        for _ in range(_MAX_BATCHES):
            events = self.store.events.since(cursor, limit=self.batch)
            if not events:
                break
            # Webhooks are read after the events: one created in between starts after them.
            hooks = [h for h in self.store.webhooks.list() if h.enabled]
            matched = [
                (h.id, e.id, e.kind)
                for e in events
                for h in hooks
                if wants(
                    h.id, h.events, h.after_event_id, event_id=e.id, kind=e.kind, subject=e.subject
                )
            ]
            cursor = events[-1].id
            with self.store.transaction() as tx:
                queued += tx.webhook_deliveries.enqueue(matched)
                tx.webhook_deliveries.set_cursor(cursor)
            if len(events) < self.batch:
                break
        return queued

    # -- 2. dispatch ------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Start due deliveries within the concurrency limits; returns how many started."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        due = self.store.webhook_deliveries.due(
            self.clock.now(),
            limit=free * self.per_webhook,
            exclude=list(self._inflight),
            per_webhook=self.per_webhook,
        )
        if not due:
            return 0
        hooks = {h.id: h for h in self.store.webhooks.list()}
        busy = Counter(hook_id for hook_id, _ in self._inflight.values())
        started = 0
        for delivery, event in due:
            hook = hooks.get(delivery.webhook_id)
            if hook is None or busy[hook.id] >= self.per_webhook:
                continue
            busy[hook.id] += 1
            task = asyncio.get_running_loop().create_task(self._attempt(hook, delivery, event))
            self._inflight[delivery.id] = (hook.id, task)
            task.add_done_callback(functools.partial(self._finished, delivery.id))
            started += 1
            if started >= free:
                break
        return started

    def _finished(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(delivery_id, None)
        self._wake.set()

    async def _attempt(self, hook: Webhook, delivery: Delivery, event: Event) -> None:
        status, error = await self._post(hook, delivery, event)
        ok = status is not None and 200 <= status < 300
        outcome = after_attempt(self.policy, delivery.attempts, ok, self.clock.now())
        where = redact(hook.url)
        try:
            with self.store.transaction() as tx:
                stored = tx.webhook_deliveries.record(
                    delivery.id,
                    status=outcome.status,
                    attempts=outcome.attempts,
                    last_status=status,
                    last_error=error,
                    next_attempt_at=outcome.next_attempt_at,
                    delivered_at=outcome.delivered_at,
                )
                if stored is not None and outcome.gave_up:
                    tx.events.append(
                        FAILED_KIND,
                        hook.id,
                        f"webhook {hook.id} gave up on event {event.id} ({event.kind}) to"
                        f" {where} after {outcome.attempts} attempts: {error}",
                        actor="webhooks",
                        data={
                            "webhook": hook.id,
                            "delivery": delivery.id,
                            "url": where,
                            "event_id": event.id,
                            "event_kind": event.kind,
                            "attempts": outcome.attempts,
                            "last_status": status,
                            "last_error": error,
                        },
                    )
        except SluicegateError as exc:  # stays pending: sent again later (at least once)
            log.warning("webhook %s: could not record delivery %s: %s", hook.id, delivery.id, exc)
            return
        if outcome.gave_up:
            log.warning(
                "webhook %s: gave up on event %s to %s after %s attempts: %s",
                hook.id,
                event.id,
                where,
                outcome.attempts,
                error,
            )
        elif not ok:
            log.info(
                "webhook %s: attempt %s of event %s to %s failed (%s); next in %.0fs",
                hook.id,
                outcome.attempts,
                event.id,
                where,
                error,
                (outcome.next_attempt_at or 0) - self.clock.now(),
            )

    async def _post(
        self, hook: Webhook, delivery: Delivery, event: Event
    ) -> tuple[int | None, str | None]:
        """One POST: (HTTP status, error text); status None when no answer came."""
        body = body_of(_event_json(event))
        timestamp = int(self.clock.now())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Sluicegate-Webhook/{__version__}",
            "X-Sluicegate-Event": event.kind,
            "X-Sluicegate-Delivery": str(delivery.id),
            "X-Sluicegate-Attempt": str(delivery.attempts + 1),
            "X-Sluicegate-Timestamp": str(timestamp),
            "X-Sluicegate-Signature": sign(hook.secret, timestamp, body),
        }
        try:
            await check_target(hook.url, self.allow_private)
        except SpecError as exc:  # resolves to a private address now: not sent
            return None, exc.problems[0].message
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http().stream(
                    "POST", hook.url, content=body, headers=headers
                ) as r:
                    # The status only: a receiver's answer is not ours to store or show.
                    return r.status_code, None if 200 <= r.status_code < 300 else (
                        f"HTTP {r.status_code}"
                    )
        except TimeoutError:
            return None, f"no answer within {self.timeout:g}s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            )
            self._client = httpx.AsyncClient(
                timeout=self.timeout, limits=limits, follow_redirects=False
            )
        return self._client


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "subject": e.subject,
        "message": e.message,
        "actor": e.actor,
        "at": e.at,
        "data": e.data,
    }
