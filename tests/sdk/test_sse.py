from __future__ import annotations

import random

from sluicegate.sdk._sse import SseDecoder, SseEvent, encode_event
from sluicegate.sdk._sync import backoff_delay


def test_an_event_is_yielded_only_after_its_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'id: "7"\nevent: snapshot\ndata: {"a"') == []
    assert decoder.feed(b": 1}\n") == []
    assert decoder.feed(b"\n") == [SseEvent("snapshot", '{"a": 1}', '"7"')]
    assert decoder.last_id == '"7"'


def test_comments_count_as_heartbeats_and_crlf_is_accepted() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b": heartbeat\r\n\r\ndata: x\r\n\r\n") == [SseEvent("message", "x", None)]
    assert decoder.comments == 1


def test_encoded_events_decode_to_themselves_in_any_chunking() -> None:
    payload = encode_event("snapshot", '{"v": 1}', '"1"') + encode_event("snapshot", "2", '"2"')
    rng = random.Random(4)
    for _ in range(50):
        decoder, events, i = SseDecoder(), [], 0
        while i < len(payload):
            n = rng.randint(1, 7)
            events += decoder.feed(payload[i : i + n])
            i += n
        assert [e.data for e in events] == ['{"v": 1}', "2"]


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    assert backoff_delay(0, 0.1, 10, lambda: 0.0) == 0.05
    assert backoff_delay(3, 0.1, 10, lambda: 0.999999) == 0.8 * (0.5 + 0.5 * 0.999999)
    assert backoff_delay(40, 0.1, 10, lambda: 0.0) == 5.0
