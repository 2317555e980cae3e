"""Webhook signatures: HMAC-SHA256 of ``"<timestamp>.<body>"`` with the webhook's secret.

Sent as ``X-Sluicegate-Signature: sha256=<hex>`` with ``X-Sluicegate-Timestamp: <unix
seconds>``. Signing the timestamp with the body lets a receiver refuse replays of an old
delivery (:func:`verify`'s ``tolerance``). Pure: no clock is read, ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["SIGNATURE_PREFIX", "new_secret", "sign", "verify"]

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Sluicegate-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(int(timestamp)).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float | None = 300.0,
) -> bool:
    """Whether ``signature`` is ours for this body and timestamp (compared in constant time)
    and the timestamp is within ``tolerance`` seconds of ``now`` (default: the current
    time), so a captured request cannot be replayed later. ``tolerance=None`` skips that
    check (only for replaying stored deliveries on purpose)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None:
        current = time.time() if now is None else now  # a receiver's library default
        if abs(current - ts) > tolerance:
            return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def new_secret() -> str:
    """A random signing secret (256 bits), for a webhook created without one."""
    return "whsec_" + secrets.token_urlsafe(32)
