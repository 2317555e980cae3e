"""In-process flag client: keeps a snapshot current in a background thread and evaluates it
with the same compiled evaluator the agent uses (no second implementation).

Fork-safe: a thread does not survive ``fork()``, so gunicorn/uvicorn workers forked after
the client was created would serve the parent's snapshot for ever. An ``os.register_at_fork``
hook restarts the updater in every child.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sluicegate.errors import SpecError
from sluicegate.flags.evaluator import ErrorCode, FlagType, Reason, Resolution
from sluicegate.flags.snapshot import ServingSet, parse_snapshot
from sluicegate.sdk._sync import SyncLoop, SyncStatus

__all__ = ["Client"]

log = logging.getLogger(__name__)

Listener = Callable[[str, ServingSet | None], None]
_NOT_READY = Resolution(
    None, None, Reason.ERROR, ErrorCode.PARSE_ERROR, "no flag snapshot received yet"
)


class Client:
    """Flags from an agent (``Client("http://127.0.0.1:2772")``) or straight from the
    server (``Client("https://sluice.example", env="prod", key=KEY)``).

    Evaluations never raise and never block on the network: before the first snapshot they
    return the caller's default (reason ERROR, PARSE_ERROR). ``on_change(fn)`` registers
    ``fn(event, serving)`` for ``"ready"``, ``"changed"``, ``"stale"`` and ``"connected"``.
    """

    def __init__(
        self,
        url: str,
        env: str | None = None,
        key: str | None = None,
        *,
        poll_interval: float = 30.0,
        start: bool = True,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.ca_file = ca_file  # a private CA for an https:// url (else the system's trust)
        self.client_cert, self.client_key = client_cert, client_key  # mutual TLS
        if env is None:
            self.snapshot_url, self.stream_url = f"{base}/v1/snapshot", f"{base}/v1/stream"
        else:
            self.snapshot_url = f"{base}/v1/flags/{env}/snapshot"
            self.stream_url = f"{base}/v1/flags/{env}/stream"
        self.key = key
        self.poll_interval = poll_interval
        self._serving: ServingSet | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._loop: SyncLoop | None = None
        self._closed = False
        self._was_connected = False
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(ref))
        if start:
            self.start()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._loop = SyncLoop(
            self.snapshot_url,
            self.stream_url,
            self.key,
            self._accept,
            self._etag,
            poll_interval=self.poll_interval,
            on_status=self._status,
            name="sluicegate-sdk-sync",
            ca_file=self.ca_file,
            client_cert=self.client_cert,
            client_key=self.client_key,
        )
        self._loop.start()

    def close(self) -> None:
        self._closed = True
        if self._loop is not None:
            self._loop.stop()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first snapshot has arrived (True) or ``timeout`` passed."""
        return self._ready.wait(timeout)

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def serving(self) -> ServingSet | None:
        return self._serving

    @property
    def version(self) -> int | None:
        serving = self._serving
        return None if serving is None else serving.version

    @property
    def status(self) -> SyncStatus | None:
        return None if self._loop is None else self._loop.status

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(
        self,
        key: str,
        context: Mapping[str, Any] | None = None,
        default: Any = None,
        expected_type: FlagType | str | None = None,
    ) -> Resolution:
        serving = self._serving
        if serving is None:
            return Resolution(
                default, None, Reason.ERROR, _NOT_READY.error_code, _NOT_READY.error_message
            )
        return serving.flags_for(context).evaluate(key, context, default, expected_type)

    def get_boolean(self, key: str, context: Mapping[str, Any] | None, default: bool) -> bool:
        serving = self._serving
        if serving is None:
            return default
        return serving.flags_for(context).get_boolean(key, context, default)

    def get_string(self, key: str, context: Mapping[str, Any] | None, default: str) -> str:
        serving = self._serving
        if serving is None:
            return default
        return serving.flags_for(context).get_string(key, context, default)

    def get_number(self, key: str, context: Mapping[str, Any] | None, default: float) -> float:
        serving = self._serving
        if serving is None:
            return default
        return serving.flags_for(context).get_number(key, context, default)

    def get_object(
        self, key: str, context: Mapping[str, Any] | None, default: dict[str, Any]
    ) -> dict[str, Any]:
        serving = self._serving
        if serving is None:
            return default
        return serving.flags_for(context).get_object(key, context, default)

    # -- sync callbacks (the updater thread) ----------------------------------------------

    def _etag(self) -> str | None:
        serving = self._serving
        return None if serving is None else serving.etag

    def _accept(self, payload: str) -> bool:
        try:
            _, serving = parse_snapshot(payload)
        except SpecError as exc:
            log.error(
                "rejected an invalid flag snapshot; keeping version %s: %s", self.version, exc
            )
            return False
        with self._lock:
            current = self._serving
            if current is not None and current.etag == serving.etag:
                return False
            self._serving = serving
        first = current is None
        self._ready.set()
        self._emit("ready" if first else "changed", serving)
        return True

    def _status(self, status: SyncStatus) -> None:
        if status.connected != self._was_connected:
            self._was_connected = status.connected
            if self._serving is not None:
                self._emit("connected" if status.connected else "stale", self._serving)

    def _emit(self, event: str, serving: ServingSet | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, serving)
            except Exception:
                log.exception("a flag change listener failed")

    def _after_fork(self) -> None:
        if self._closed:
            return
        # The parent's thread and lock did not come along; its sockets stay the parent's.
        self._lock = threading.Lock()
        self._was_connected = False
        self.start()


def _restart_in_child(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None:
        client._after_fork()
