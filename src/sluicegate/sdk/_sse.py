"""Server-sent events framing (the WHATWG ``text/event-stream`` format), pure.

:class:`SseDecoder` is fed raw bytes as they arrive and yields an event only when its
terminating blank line has arrived: a stream cut in the middle of an event yields nothing
for it, so a partial snapshot can never be applied.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseDecoder", "SseEvent", "encode_event"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None


def encode_event(event: str, data: str, event_id: str | None = None) -> bytes:
    """One event; ``data`` must be a single line (compact JSON is)."""
    if "\n" in data or "\r" in data:
        raise ValueError("SSE data must be one line here")
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


class SseDecoder:
    """Incremental decoder; ``comments`` counts comment lines (heartbeats) seen so far."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.last_id: str | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    events.append(
                        SseEvent(self._event or "message", "\n".join(self._data), self._id)
                    )
                    if self._id is not None:
                        self.last_id = self._id
                self._event, self._data, self._id = "", [], None
                continue
            text = line.decode("utf-8", errors="replace")
            if text.startswith(":"):
                self.comments += 1
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._id = value
        return events
