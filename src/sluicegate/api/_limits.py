"""Bounds on what one request can make the API hold: its body.

Pure ASGI, ahead of routing and authentication: a declared ``Content-Length`` over the
limit is answered 413 before a byte of the body is read; a body without one (chunked) is
counted as it arrives and cut off with 413 at the limit. Nothing is buffered here.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY", "BodyLimit"]

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: the largest spec or flag set seen is a few dozen KiB


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body
            except ValueError:
                await self._answer(send, 400, "Content-Length is not a number")
                return
            if too_large:
                await self._answer(send, 413, self._message())
                return
        seen = 0
        answered = started = False

        async def counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    if not started and not answered:
                        answered = True
                        await self._answer(send, 413, self._message())
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if answered:
                return  # we answered already; the app's own answer goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not answered:
                raise  # the app's failure, not the cut-off body's

    def _message(self) -> str:
        return f"request body larger than {self.max_body} bytes (sluice server --max-body)"

    @staticmethod
    async def _answer(send: Send, status: int, error: str) -> None:
        body = json.dumps({"error": error}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
