"""Tamper-proof target-group stickiness cookies (pure: no I/O, time passed in).

Value: ``<group>.<expires>.<mac>`` where mac is the first 16 bytes of
HMAC-SHA256(key, "<cookie name>|<group>|<expires>") in unpadded base64url. A value that does
not verify, has expired or names an unknown group is ignored, and the client is re-balanced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["StickyCodec", "find_cookie"]

# Verified values are cached so the hot path pays one dict lookup per sticky request, not an
# HMAC. The cache is cleared when it reaches this many entries (bounds memory under a flood of
# forged values, which never enter it anyway).
_CACHE_LIMIT = 65536


class StickyCodec:
    def __init__(self, key: bytes, cookie_name: str) -> None:
        if len(key) < 16:
            raise ValueError("the stickiness key must be at least 16 bytes")
        self._key = key
        self._prefix = cookie_name.encode() + b"|"
        self._verified: dict[bytes, tuple[str, int]] = {}
        self._issued: dict[tuple[str, int], bytes] = {}

    def _mac(self, group: str, expires: int) -> bytes:
        msg = self._prefix + f"{group}|{expires}".encode()
        digest = hmac.digest(self._key, msg, hashlib.sha256)[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=")

    def issue(self, group: str, expires: int) -> bytes:
        """The cookie value naming ``group`` until ``expires`` (unix seconds)."""
        cache_key = (group, expires)
        value = self._issued.get(cache_key)
        if value is None:
            if len(self._issued) >= 1024:
                self._issued.clear()
            value = f"{group}.{expires}.".encode() + self._mac(group, expires)
            self._issued[cache_key] = value
        return value

    def verify(self, value: bytes, now: int) -> str | None:
        """The group a genuine, unexpired value names; None for anything else."""
        hit = self._verified.get(value)
        if hit is None:
            hit = self._check(value)
            if hit is None:
                return None
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[value] = hit
        group, expires = hit
        return group if expires > now else None

    def _check(self, value: bytes) -> tuple[str, int] | None:
        parts = value.rsplit(b".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
            return None
        try:
            group = parts[0].decode("ascii")
        except UnicodeDecodeError:
            return None
        expires = int(parts[1])
        if not hmac.compare_digest(parts[2], self._mac(group, expires)):
            return None
        return group, expires


def find_cookie(header: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in a Cookie header, or None. ``name`` ends with ``=``."""
    start = 0
    while True:
        i = header.find(name, start)
        if i < 0:
            return None
        # Must start the header or follow "; " (or ";"), so "xsluice_tg=" does not match.
        if i == 0 or header[i - 1] in b"; ":
            j = header.find(b";", i)
            return header[i + len(name) : j if j >= 0 else len(header)].strip()
        start = i + 1
