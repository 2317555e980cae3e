"""Sticky bucketing: a user lands in the same bucket on every host, in every language.

The algorithm is a published contract (``docs/flags-bucketing.md``, test vectors in
``docs/flags-bucketing-vectors.json``); changing anything here re-buckets every user::

    key    = UTF-8 bytes of  namespace + ":" + salt + ":" + value
    hash   = MurmurHash3_x86_32(key, seed=0), read as an unsigned 32-bit integer
    bucket = hash mod 100_000                    (0 .. 99_999, i.e. steps of 0.001 %)

For a flag the namespace is the flag key and the salt the flag's ``salt`` (default ``""``);
for a flag-set rollout the namespace is ``$rollout`` and the salt the rollout id. Neither a
flag key nor a salt contains ``":"``, so the join is unambiguous. ``2**32 mod 100_000`` is
67_296, so buckets below 67_296 receive 42_950 of the 2**32 hashes and the others 42_949: a
relative bias of 2.3e-5, far below what sampling noise can show.

Imports only the standard library and ``mmh3``: the SDK and agent import this module.
"""

from __future__ import annotations

from mmh3 import hash as _mmh3_hash

__all__ = [
    "BUCKETS",
    "ROLLOUT_NAMESPACE",
    "SEPARATOR",
    "bucket",
    "bucket_key",
    "bucket_value",
    "percent_to_buckets",
    "rollout_bucket",
    "sees_new_version",
]

BUCKETS = 100_000
SEPARATOR = ":"
ROLLOUT_NAMESPACE = "$rollout"


def bucket_value(value: object) -> str | None:
    """The string a context value is bucketed (and listed in a segment) by: a string as it
    is, an integer (not a bool) in decimal, anything else ``None`` (cannot be bucketed)."""
    if type(value) is str:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return str.__str__(value)
    return None


def bucket_key(namespace: str, salt: str, value: str) -> bytes:
    """The bytes that are hashed; raises UnicodeEncodeError for a string that is not valid
    Unicode (a lone surrogate), which has no UTF-8 form."""
    return f"{namespace}{SEPARATOR}{salt}{SEPARATOR}{value}".encode()


def bucket(namespace: str, salt: str, value: str) -> int:
    """The bucket (0 .. BUCKETS-1) of ``value`` under ``namespace`` and ``salt``."""
    # mmh3 is always given bytes: mmh3 5.3.1 crashes the interpreter (SIGSEGV) when given a
    # str holding a lone surrogate, where encoding first raises a catchable error.
    return int(_mmh3_hash(bucket_key(namespace, salt, value), 0, False)) % BUCKETS


def percent_to_buckets(percent: float) -> int:
    """How many buckets a share of ``percent`` (0..100, steps of 0.001) covers."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a percentage is between 0 and 100, not {percent!r}")
    return round(percent * (BUCKETS // 100))


def rollout_bucket(rollout_id: str | int, key: str) -> int:
    """The bucket of targeting key ``key`` in flag-set rollout ``rollout_id``.

    Salting by the rollout id makes each rollout pick its own users, independent of every
    flag's split, so a rollout's early share is not the same users as a 10 % flag cohort.
    """
    salt = str(rollout_id)
    if SEPARATOR in salt:
        raise ValueError(f"a rollout id cannot contain {SEPARATOR!r}: {salt!r}")
    return bucket(ROLLOUT_NAMESPACE, salt, key)


def sees_new_version(rollout_id: str | int, key: str, percent: float) -> bool:
    """Whether the user ``key`` gets version N+1 while rollout ``rollout_id`` is at
    ``percent``: exactly when their rollout bucket is below the percentage's bucket count.
    Monotone: raising the percentage only ever adds users."""
    return rollout_bucket(rollout_id, key) < percent_to_buckets(percent)
