"""The client end of the flag sync protocol, in a daemon thread (used by the SDK and agent).

It holds a server-sent-events stream open (``Last-Event-ID`` = the etag it has, so a
reconnect to an unchanged server receives nothing), reconnects with jittered exponential
back-off, and falls back to ETag polling (``If-None-Match``) when the stream endpoint
answers 404/405. Each received payload is handed to ``accept``, which validates it and says
whether it replaced the current snapshot; nothing here decides what is good.

httpx is imported when the thread starts, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluicegate._trust import client_tls, untrusted_reason
from sluicegate.sdk._sse import SseDecoder

if TYPE_CHECKING:
    import httpx

__all__ = ["SyncLoop", "SyncStatus", "backoff_delay"]

log = logging.getLogger(__name__)

#: The server sends a heartbeat comment every 15 s; silence for this long means a dead peer.
READ_TIMEOUT = 40.0


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Full-jitter-ish exponential back-off: between half and all of ``base * 2**n``,
    capped at ``cap``; ``rand`` returns a float in [0, 1)."""
    ceiling = min(cap, base * float(2 ** min(failures, 30)))
    return ceiling * (0.5 + 0.5 * rand())


@dataclass
class SyncStatus:
    """What the loop knows about its link to the server (read from other threads)."""

    connected: bool = False
    mode: str = "stream"  # or "poll" when the stream endpoint is not there
    last_contact: float | None = None  # monotonic clock at the last byte/answer received
    last_error: str | None = None
    reconnects: int = 0


class SyncLoop:
    """Keep a snapshot current; ``accept(payload)`` validates and applies one and returns
    whether it replaced the current snapshot; ``current_etag()`` says what we hold."""

    def __init__(
        self,
        snapshot_url: str,
        stream_url: str | None,
        key: str | None,
        accept: Callable[[str], bool],
        current_etag: Callable[[], str | None],
        *,
        poll_interval: float = 30.0,
        backoff_base: float = 0.1,
        backoff_max: float = 10.0,
        on_status: Callable[[SyncStatus], None] | None = None,
        name: str = "sluicegate-sync",
        monotonic: Callable[[], float] = time.monotonic,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
    ) -> None:
        """``ca_file``: trust server certificates this CA signed (else the system's trust);
        a server whose certificate does not verify is never synced from. ``client_cert``/
        ``client_key``: presented to a server that asks for one (mutual TLS)."""
        self.verify = client_tls(ca_file, client_cert, client_key)
        self.snapshot_url = snapshot_url
        self.stream_url = stream_url
        self.key = key
        self.accept = accept
        self.current_etag = current_etag
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_status = on_status
        self.name = name
        self.monotonic = monotonic
        self.status = SyncStatus(mode="stream" if stream_url else "poll")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self._rand = random.Random()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()  # unblocks the reading thread
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "sluicegate-sync"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def _contact(self, connected: bool, error: str | None = None) -> None:
        status = self.status
        if connected:
            status.last_contact = self.monotonic()
            status.last_error = None
        elif status.connected:
            status.reconnects += 1
        if error is not None:
            status.last_error = error
        status.connected = connected
        if self.on_status is not None:
            self.on_status(status)

    def _run(self) -> None:
        import httpx

        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        failures = 0
        polls_since_stream_check = 0
        with httpx.Client(timeout=timeout, headers=self._headers(), verify=self.verify) as client:
            while not self._stop.is_set():
                try:
                    if self.status.mode == "stream" and self.stream_url:
                        self._stream(client)
                        failures = 0  # the stream ended cleanly: reconnect soon
                    else:
                        self._poll(client)
                        failures = 0
                        polls_since_stream_check += 1
                        if self.stream_url and polls_since_stream_check >= 10:
                            self.status.mode, polls_since_stream_check = "stream", 0
                        self._stop.wait(self.poll_interval)
                        continue
                except _UnavailableError:
                    log.info(
                        "stream endpoint %s not available; polling %s every %gs",
                        self.stream_url,
                        self.snapshot_url,
                        self.poll_interval,
                    )
                    self.status.mode = "poll"
                    continue
                except (httpx.HTTPError, _BadStatusError, OSError) as exc:
                    if self._stop.is_set():
                        break
                    failures += 1
                    url = self.stream_url or self.snapshot_url
                    why = untrusted_reason(exc, url, "ca_file (sluice agent --ca-file)")
                    self._contact(False, why or f"{type(exc).__name__}: {exc}")
                    log.warning("flag sync from %s failed (%s); retrying", url, why or exc)
                delay = backoff_delay(
                    failures, self.backoff_base, self.backoff_max, self._rand.random
                )
                self._stop.wait(delay)

    def _stream(self, client: httpx.Client) -> None:
        assert self.stream_url is not None
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        etag = self.current_etag()
        if etag is not None:
            headers["Last-Event-ID"] = etag
        with client.stream("GET", self.stream_url, headers=headers) as response:
            self._response = response
            try:
                if response.status_code in (404, 405):
                    raise _UnavailableError()
                if response.status_code != 200:
                    raise _BadStatusError(response.status_code, response.read()[:200])
                self._contact(True)
                decoder = SseDecoder()
                for chunk in response.iter_raw():
                    for event in decoder.feed(chunk):
                        if event.event == "snapshot":
                            self._offer(event.data)
                    self._contact(True)
                    if self._stop.is_set():
                        return
            finally:
                self._response = None
        self._contact(False, "the stream ended")

    def _poll(self, client: httpx.Client) -> None:
        headers = {}
        etag = self.current_etag()
        if etag is not None:
            headers["If-None-Match"] = etag
        response = client.get(self.snapshot_url, headers=headers)
        if response.status_code == 304:
            self._contact(True)
            return
        if response.status_code != 200:
            raise _BadStatusError(response.status_code, response.content[:200])
        self._contact(True)
        self._offer(response.text)

    def _offer(self, payload: str) -> None:
        try:
            self.accept(payload)
        except Exception:  # accept validates; a bug there must not kill the sync thread
            log.exception("applying a flag snapshot failed")


class _UnavailableError(Exception):
    """The stream endpoint is not there (404/405): poll instead."""


class _BadStatusError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body.decode('utf-8', 'replace')}")
        self.status = status
