"""What a request names, made unambiguous before routing (pure): the Host, the path, the
request line, the protocols an Upgrade may switch to.

Rules and the backend must see the same host and the same path. A value the two could read
differently (``h:80@evil``, ``/public/../admin``, ``/public/%2e%2e/admin``) is either refused
(400) or normalized, and the normalized form is what goes upstream.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sluicegate.router._head import RejectError, origin_form

__all__ = [
    "VALID_HOSTS",
    "allowed_upgrade",
    "check_host",
    "is_request_line_without_version",
    "normalize_path",
    "resolve_target",
]

# RFC 3986 host (a DNS-style name or an IPv4 address, or an IPv6 literal) and an optional
# numeric port. Stricter than reg-name: no sub-delims, no percent-encoding, no userinfo.
_HOST = re.compile(rb"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?")
_PCT = re.compile(rb"%(..)?")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Hosts already found valid: keep-alive clients send the same few, so most requests skip
# the regex. Bounded; a process that sees more distinct hosts just checks the rest.
VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_MAX = 1024

Headers = list[tuple[bytes, bytes]]


def resolve_target(
    url: bytes,
    host: bytes | None,
    hparts: list[bytes],
    headers: Headers | None,
    default_host: Callable[[], bytes],
) -> tuple[bytes, bytes, list[bytes], Headers | None]:
    """The (target, Host, upstream header parts, rule headers) a request is routed and
    forwarded with: an absolute-form target's authority as the Host; without a Host (an
    HTTP/1.0 request) ``default_host()``, the address the client connected to, as nginx
    does; the Host checked (400); the path normalized (:func:`normalize_path`)."""
    if url[:1] != b"/" and url != b"*":
        url, host, hparts, headers = origin_form(url, hparts, headers)
    if host is None:
        host = default_host()
        hparts = [*hparts, b"Host", b": ", host, b"\r\n"]
        if headers is not None:
            headers.append((b"host", host))
    elif host not in VALID_HOSTS:
        check_host(host)
        if len(VALID_HOSTS) < _VALID_HOSTS_MAX:
            VALID_HOSTS.add(host)
    if b"%" in url or b"/." in url:
        path, sep, query = url.partition(b"?")
        url = normalize_path(path) + sep + query
    return url, host, hparts, headers


def check_host(host: bytes) -> None:
    """Refuse (400) a Host that is empty or not ``name[:port]`` / ``[v6][:port]``."""
    if not _HOST.fullmatch(host):
        raise RejectError(400, "invalid Host header")


def normalize_path(path: bytes) -> bytes:
    """RFC 3986 syntax-based normalization of an origin-form path (no query): percent-encoded
    unreserved characters are decoded (``%2e`` is ``.``, ``%61`` is ``a``) and dot-segments
    removed (``/a/../b`` is ``/b``; a ``..`` above the root stays at the root, as in
    RFC 3986 5.2.4). Other escapes stay as sent (``%2F`` is not a separator). A malformed
    escape is refused (400)."""
    if b"%" in path:
        path = _PCT.sub(_decode_unreserved, path)
    if b"/." not in path:
        return path
    segments = path.split(b"/")
    out: list[bytes] = []
    for seg in segments[1:]:
        if seg == b"..":
            if out:
                out.pop()
        elif seg != b".":
            out.append(seg)
    trailing = b"/" if segments[-1] in (b".", b"..") and out else b""
    return b"/" + b"/".join(out) + trailing


def _decode_unreserved(m: re.Match[bytes]) -> bytes:
    code = m.group(1)
    if code is None or code[0] not in _HEX or code[1] not in _HEX:
        raise RejectError(400, "malformed percent-encoding in the path")
    char = int(code, 16)
    return bytes((char,)) if char in _UNRESERVED else m.group(0).upper()


def allowed_upgrade(value: bytes, allowed: frozenset[bytes]) -> bytes | None:
    """The Upgrade header's protocols the listener allows (``websocket``), as a header value;
    None when it allows none of them (the request then goes upstream as plain HTTP)."""
    kept = [p.strip() for p in value.split(b",") if _protocol(p) in allowed]
    return b", ".join(kept) if kept else None


def _protocol(token: bytes) -> bytes:
    return token.strip().partition(b"/")[0].lower()


def is_request_line_without_version(data: bytes, start: int, end: int) -> bool:
    """True when ``data[start:end]`` begins a request whose first line is complete and names
    no HTTP version (an HTTP/0.9 request, answered 400 at once: llhttp would wait for a
    header block that never comes). Empty lines before a request are allowed (RFC 9112 2.2)."""
    while data.startswith(b"\r\n", start):
        start += 2
    line_end = data.find(b"\r\n", start, end)
    return line_end > start and data.find(b" HTTP/", start, line_end) < 0
