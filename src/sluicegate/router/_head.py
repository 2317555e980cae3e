"""Request-head rules that need no I/O: transfer codings, absolute-form targets, the
Connection header's hop-by-hop list, and the view rules match against."""

from __future__ import annotations

from sluicegate.router._match import RequestView

__all__ = ["RejectError", "check_transfer_encoding", "origin_form", "request_view", "strip_named"]

_PLAIN_TOKENS = frozenset((b"keep-alive", b"close", b"upgrade", b"content-length", b"host"))


class RejectError(Exception):
    """Raised inside a parser callback to answer ``status`` and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_transfer_encoding(te: bytes, http11: bool) -> None:
    """Only a lone "chunked" is forwarded (re-framed); anything else is refused (RFC 9112 6)."""
    codings = [c.strip().lower() for c in te.split(b",")]
    if codings[-1] != b"chunked":
        raise RejectError(400, "Transfer-Encoding must end with chunked")
    if not http11:
        raise RejectError(400, "Transfer-Encoding in an HTTP/1.0 request")
    if len(codings) > 1:
        raise RejectError(501, "transfer codings other than chunked are not supported")


def strip_named(hparts: list[bytes], tokens: bytes) -> list[bytes]:
    """Drop headers the Connection header names (they are hop-by-hop for this hop only)."""
    named = {t.strip().lower() for t in tokens.split(b",")} - _PLAIN_TOKENS
    if not named:
        return hparts
    out: list[bytes] = []
    for i in range(0, len(hparts), 4):
        if hparts[i].lower() not in named:
            out += hparts[i : i + 4]
    return out


def request_view(url: bytes, host: bytes | None, headers: list[tuple[bytes, bytes]]) -> RequestView:
    path, _, query = url.decode("latin-1").partition("?")
    hmap: dict[str, list[str]] = {}
    for name, value in headers:
        hmap.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return RequestView(
        path=path, query_string=query, host=(host or b"").decode("latin-1"), headers=hmap
    )


def origin_form(
    url: bytes,
    hparts: list[bytes],
    headers: list[tuple[bytes, bytes]] | None,
) -> tuple[bytes, bytes, list[bytes], list[tuple[bytes, bytes]] | None]:
    """An absolute-form target (``http://host/path``) names the host (RFC 9112 3.2.2).

    Returns (path, host, header parts, rule headers) with the target's authority as the one
    Host, so rules and the upstream see the same host and path.
    """
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise RejectError(400, "the request target must be a path or an http(s) URL")
    end = len(rest)
    for ch in (b"/", b"?"):
        i = rest.find(ch)
        if 0 <= i < end:
            end = i
    authority, path = rest[:end], rest[end:]
    if not authority or b"@" in authority:
        raise RejectError(400, "the request target has no usable host")
    kept = [
        x
        for i in range(0, len(hparts), 4)
        if hparts[i].lower() != b"host"
        for x in hparts[i : i + 4]
    ]
    if headers is not None:
        headers = [(n, v) for n, v in headers if n != b"host"]
        headers.append((b"host", authority))
    return (
        path if path[:1] == b"/" else b"/" + path,
        authority,
        [*kept, b"Host", b": ", authority, b"\r\n"],
        headers,
    )
