"""A real HTTP webhook receiver on 127.0.0.1 (``http.server`` in a thread) for tests.

It records every request (path, headers, body) and answers from a per-path script: each
request to a path takes the next step, e.g. ``[500, 500, 200]`` fails twice then accepts;
``Hang(seconds)`` holds the request that long before answering; after the script, 200.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["Hang", "Received", "Receiver"]


@dataclass(frozen=True)
class Hang:
    """Hold the request ``seconds`` (or until the receiver stops), then answer ``status``."""

    seconds: float
    status: int = 200


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    answered: int = 0  # the status it is (or, after a Hang, will be) answered with

    def header(self, name: str) -> str:
        return self.headers[name.lower()]


@dataclass
class _State:
    scripts: dict[str, list[int | Hang]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class Receiver:
    """``with Receiver() as r: r.script("/hook", [500, 200]); url = r.url("/hook")``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server context; the receiver then speaks HTTPS."""
        state = self._state = _State()
        self.scheme = "https" if tls is not None else "http"

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with state.lock:
                    script = state.scripts.get(self.path, [])
                    step: int | Hang = script.pop(0) if script else 200
                status = step.status if isinstance(step, Hang) else step
                with state.lock:
                    state.requests.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                        )
                    )
                if isinstance(step, Hang):
                    state.stopping.wait(step.seconds)
                payload = b"ok" if status < 300 else f"failing on purpose: {status}".encode()
                with contextlib.suppress(OSError):  # the client gave up (timeout)
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read the recorded requests, not a log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # the handshake runs in accept; a failed one is dropped
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def script(self, path: str, steps: Sequence[int | Hang]) -> None:
        with self._state.lock:
            self._state.scripts[path] = list(steps)

    @property
    def requests(self) -> list[Received]:
        """Requests received so far, in order of arrival."""
        with self._state.lock:
            return list(self._state.requests)

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 30.0
    ) -> list[Received]:
        """Wait until ``count`` requests (to ``path``) arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests if path is None else self.to(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(got)} of {count} webhook requests arrived:"
                    f" {[(r.path, r.header('x-sluicegate-event')) for r in got]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
