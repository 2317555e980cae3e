"""Rules and the backend see the same host and the same path, and only allowed upgrades pass.

Two sample apps: ``v1`` behind the default action, ``v2`` behind two rules (``host: h`` and
``path_prefix: /headers``). ``/headers`` echoes the request target and headers the backend
received, and every answer says which app sent it (``X-Version``), so each case shows both
where the router sent a request and what it sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests._support import AppProcess, RouterProcess, free_port, start_app, start_router

H = b"Host: shop.example\r\n"


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[AppProcess, AppProcess]]:
    with start_app(version="v1") as v1, start_app(version="v2") as v2:
        yield v1, v2


@pytest.fixture(scope="module")
def router(apps: tuple[AppProcess, AppProcess]) -> Iterator[RouterProcess]:
    v1, v2 = apps

    def group(name: str, app: AppProcess) -> dict[str, Any]:
        return {"name": name, "targets": [app.address], "health_check": {"enabled": False}}

    to_v2 = [{"target_group": "v2", "weight": 1}]
    config = {
        "listeners": [
            {
                "name": "web",
                "port": free_port(),
                "rules": [
                    {"match": {"host": "h"}, "forward": to_v2},
                    {"match": {"path_prefix": "/headers"}, "forward": to_v2},
                ],
                "default": {"forward": [{"target_group": "v1", "weight": 1}]},
            },
            {
                "name": "no-upgrades",
                "port": free_port(),
                "upgrades": [],
                "default": {"forward": [{"target_group": "v1", "weight": 1}]},
            },
        ],
        "target_groups": [group("v1", v1), group("v2", v2)],
    }
    with start_router(config) as r:
        yield r
        assert r.proc.poll() is None, f"router died:\n{r.logs()}"


@pytest.fixture
def port(router: RouterProcess, apps: tuple[AppProcess, AppProcess]) -> int:
    for app in apps:
        app.reset()
    return router.listener_port("web")


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` (ending with a ``Connection: close`` request) and read to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """(status, headers, body) of each answer in ``raw`` (Content-Length framed)."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        length = int(headers.get("content-length", "0"))
        out.append((int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


def seen(answer: tuple[int, dict[str, str], bytes]) -> tuple[str, str, dict[str, list[str]]]:
    """(app version, target, headers by lower-case name) of a /headers answer."""
    status, headers, body = answer
    assert status == 200, (status, body[:300])
    data = json.loads(body)
    by_name: dict[str, list[str]] = {}
    for name, value in data["headers"]:
        by_name.setdefault(name.lower(), []).append(value)
    return headers["x-version"], data["target"], by_name


def get(port: int, target: bytes, host: bytes | None = b"shop.example") -> bytes:
    host_line = b"" if host is None else b"Host: " + host + b"\r\n"
    return exchange(
        port, b"GET " + target + b" HTTP/1.1\r\n" + host_line + b"Connection: close\r\n\r\n"
    )


# -- Host --------------------------------------------------------------------------------------


def test_http_1_0_request_without_host_goes_upstream_with_the_address_it_came_to(
    port: int,
) -> None:
    raw = exchange(port, b"GET /headers HTTP/1.0\r\n\r\n")
    _, _, headers = seen(answers(raw)[0])
    assert headers["host"] == [f"127.0.0.1:{port}"]
    assert headers["x-forwarded-host"] == [f"127.0.0.1:{port}"]


@pytest.mark.parametrize(
    "host",
    [b"a b", b"h:abc", b"h:80@evil", b"", b"h/x", b"user@h", b"h:80:80", b"[::1"],
    ids=["space", "non-numeric-port", "userinfo-after-port", "empty", "slash", "userinfo",
         "two-ports", "open-bracket"],
)  # fmt: skip
def test_an_invalid_host_is_a_400_and_the_backend_sees_nothing(
    port: int, apps: tuple[AppProcess, AppProcess], host: bytes
) -> None:
    raw = get(port, b"/headers", host)
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert b"invalid Host header" in raw
    assert [app.stats()["by_path"] for app in apps] == [{}, {}]


@pytest.mark.parametrize(
    ("host", "version"),
    [(b"h", "v2"), (b"h:8080", "v2"), (b"H", "v2"), (b"h.", "v2"), (b"h.example", "v1"),
     (b"hh", "v1"), (b"[::1]:8080", "v1"), (b"127.0.0.1:8080", "v1")],
)  # fmt: skip
def test_the_host_rule_matches_the_host_without_port_case_or_trailing_dot(
    port: int, host: bytes, version: str
) -> None:
    status, headers, _ = answers(get(port, b"/", host))[0]
    assert (status, headers["x-version"]) == (200, version)


# -- the path ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [b"/public/../headers", b"/public/%2e%2e/headers", b"/public/%2E%2e/headers",
     b"/./headers", b"/../headers", b"/a/b/../../headers", b"/%68eaders"],
)  # fmt: skip
def test_dot_segments_are_removed_before_rules_match_and_the_clean_path_goes_upstream(
    port: int, target: bytes
) -> None:
    version, upstream_target, _ = seen(answers(get(port, target + b"?q=/../x"))[0])
    assert (version, upstream_target) == ("v2", "/headers?q=/../x")  # the query as sent


def test_a_path_that_stays_outside_every_rule_keeps_its_shape(port: int) -> None:
    """Normalization is RFC 3986's: empty segments and other escapes are left alone."""
    status, headers, body = answers(get(port, b"/a//b/%7e/%41%2f/./c/"))[0]
    assert (status, headers["x-version"]) == (404, "v1")
    assert b"/a//b/~/A%2F/c/" in body  # the app's 404 names the path it got
    # An encoded slash is not a separator: "..%2Fheaders" is one segment, no rule matches.
    status, headers, body = answers(get(port, b"/public/..%2fheaders"))[0]
    assert (status, headers["x-version"]) == (404, "v1")
    assert b"/public/..%2Fheaders" in body


@pytest.mark.parametrize("target", [b"/a%zz", b"/a%", b"/a%4"])
def test_a_malformed_percent_escape_in_the_path_is_a_400(
    port: int, apps: tuple[AppProcess, AppProcess], target: bytes
) -> None:
    raw = get(port, target)
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert [app.stats()["by_path"] for app in apps] == [{}, {}]


# -- request lines and upgrades ----------------------------------------------------------------


def test_an_http_0_9_request_line_is_a_400_at_once(port: int) -> None:
    """A real HTTP/0.9 client sends one line and waits: it must not wait for the 408 of
    ``timeouts.header`` (10 s here, beyond this socket's 5 s timeout)."""
    raw = exchange(port, b"GET /headers\r\n")
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert b"HTTP/0.9" in raw


def test_an_h2c_upgrade_is_not_forwarded_and_the_connection_goes_on_as_http_1_1(
    port: int,
) -> None:
    raw = exchange(
        port,
        b"GET /headers HTTP/1.1\r\n" + H + b"Connection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        b"GET /headers?second HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    )
    first, second = answers(raw)
    _, target, headers = seen(first)
    assert target == "/headers"
    assert not {"upgrade", "connection", "http2-settings"} & set(headers)
    assert seen(second)[1] == "/headers?second"


def test_a_listener_without_allowed_upgrades_forwards_a_websocket_request_as_plain_http(
    router: RouterProcess,
) -> None:
    raw = exchange(
        router.listener_port("no-upgrades"),
        b"GET /headers HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        b"GET /headers?second HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
    )
    first, second = answers(raw)
    assert not {"upgrade", "connection"} & set(seen(first)[2])
    assert seen(second)[1] == "/headers?second"
