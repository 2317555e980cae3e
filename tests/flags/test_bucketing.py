"""Bucketing is a published algorithm: our implementation, an independent pure-Python
MurmurHash3 and the vectors in docs/flags-bucketing-vectors.json must all agree, so any other
implementation can check itself against the file.

Regenerate the file (only when the algorithm deliberately changes, which re-buckets every
user):  .venv/bin/python -m tests.flags.test_bucketing --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.flags.bucketing import (
    BUCKETS,
    bucket,
    bucket_key,
    bucket_value,
    percent_to_buckets,
    rollout_bucket,
    sees_new_version,
)

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "flags-bucketing-vectors.json"
M32 = 0xFFFFFFFF


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x86_32 written out from the reference C code, independent of mmh3."""

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & M32

    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & M32
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = rotl((k * c1) & M32, 15)
        h ^= (k * c2) & M32
        h = (rotl(h, 13) * 5 + 0xE6546B64) & M32
    tail = data[whole:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        h ^= (rotl((k * c1) & M32, 15) * c2) & M32
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


# (namespace, salt, value): ASCII ids, every key length mod 4, empty parts, salts, UTF-8 of
# 2, 3 and 4 bytes, a long value, decimal integer ids, the rollout namespace.
VECTOR_INPUTS: list[tuple[str, str, str]] = [
    ("new-checkout", "", "user-00000"),
    ("new-checkout", "", "user-00001"),
    ("new-checkout", "", "user-00002"),
    ("new-checkout", "", "user-09999"),
    ("new-checkout", "2026-q1", "user-00000"),
    ("new-checkout", "2026-q1", "user-00001"),
    ("checkout-color", "", "user-00000"),
    ("checkout-color", "", "u"),
    ("checkout-color", "", "u1"),
    ("checkout-color", "", "u12"),
    ("checkout-color", "", "u123"),
    ("checkout-color", "", ""),
    ("a", "", ""),
    ("a", "b", "c"),
    ("pricing.v2", "salt_with.dots-and-dashes", "account-42"),
    ("new-checkout", "", "12345"),
    ("new-checkout", "", "-7"),
    ("new-checkout", "", "zoë@example.com"),
    ("new-checkout", "", "Łódź"),
    ("new-checkout", "", "東京"),
    ("new-checkout", "", "ユーザー"),
    ("new-checkout", "", "🚀🚀"),
    ("new-checkout", "", "user with spaces and : colons"),
    ("new-checkout", "", "x" * 1000),
    ("new-checkout", "ünïcödé-salt", "user-00000"),
    ("$rollout", "1", "user-00000"),
    ("$rollout", "1", "user-00001"),
    ("$rollout", "42", "user-00000"),
    ("$rollout", "42", "東京"),
    ("$rollout", "rollout-7f3a", "user-12345"),
]

ROLLOUT_INPUTS: list[tuple[str, str, float]] = [
    ("1", "user-00000", 0),
    ("1", "user-00000", 10),
    ("1", "user-00000", 50),
    ("1", "user-00000", 100),
    ("42", "user-00000", 25),
    ("42", "user-00001", 25),
    ("42", "user-00002", 33.333),
    ("rollout-7f3a", "user-12345", 99.999),
]


def build_vectors() -> dict[str, Any]:
    vectors = []
    for namespace, salt, value in VECTOR_INPUTS:
        key = bucket_key(namespace, salt, value)
        vectors.append(
            {
                "namespace": namespace,
                "salt": salt,
                "value": value,
                "key_utf8_hex": key.hex(),
                "hash_uint32": murmur3_32(key),
                "bucket": murmur3_32(key) % BUCKETS,
            }
        )
    rollouts = [
        {
            "rollout_id": rid,
            "value": value,
            "percent": pct,
            "bucket": murmur3_32(bucket_key("$rollout", rid, value)) % BUCKETS,
            "sees_new_version": murmur3_32(bucket_key("$rollout", rid, value)) % BUCKETS
            < round(pct * 1000),
        }
        for rid, value, pct in ROLLOUT_INPUTS
    ]
    return {
        "algorithm": "bucket = MurmurHash3_x86_32(UTF-8(namespace + ':' + salt + ':' + value),"
        " seed 0) as unsigned 32-bit, mod 100000",
        "buckets": BUCKETS,
        "flags": "namespace = flag key, salt = the flag's salt (default empty)",
        "rollouts": "namespace = '$rollout', salt = rollout id; a user sees the new version"
        " when bucket < round(percent * 1000)",
        "vectors": vectors,
        "rollout_vectors": rollouts,
    }


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def test_every_published_vector_matches_our_buckets() -> None:
    data = load()
    assert data["buckets"] == BUCKETS == 100_000
    assert len(data["vectors"]) == len(VECTOR_INPUTS)
    for v in data["vectors"]:
        key = bucket_key(v["namespace"], v["salt"], v["value"])
        assert key.hex() == v["key_utf8_hex"]
        assert mmh3.hash(key, 0, False) == v["hash_uint32"]
        assert bucket(v["namespace"], v["salt"], v["value"]) == v["bucket"]


def test_every_published_rollout_vector_matches() -> None:
    for v in load()["rollout_vectors"]:
        assert rollout_bucket(v["rollout_id"], v["value"]) == v["bucket"]
        assert sees_new_version(v["rollout_id"], v["value"], v["percent"]) is v["sees_new_version"]


def test_the_vectors_file_is_what_the_independent_murmur3_computes() -> None:
    assert load() == json.loads(json.dumps(build_vectors()))


def test_known_murmur3_values_of_the_reference_implementation() -> None:
    # Published MurmurHash3_x86_32 results (seed 0) that pin the reference itself.
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723


@given(st.binary(max_size=64))
def test_mmh3_agrees_with_the_reference_murmur3_on_any_bytes(data: bytes) -> None:
    assert mmh3.hash(data, 0, False) == murmur3_32(data)


@given(
    st.text(max_size=40),
    st.text(
        alphabet=st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), max_size=10
    ),
)
def test_a_users_bucket_is_stable_and_in_range(value: str, salt: str) -> None:
    try:
        first = bucket("new-checkout", salt, value)
    except UnicodeEncodeError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        return
    assert 0 <= first < BUCKETS
    assert bucket("new-checkout", salt, value) == first
    assert first == murmur3_32(f"new-checkout:{salt}:{value}".encode()) % BUCKETS


def test_a_lone_surrogate_raises_a_catchable_error_instead_of_crashing() -> None:
    with pytest.raises(UnicodeEncodeError):
        bucket("f", "", "\ud800")


def test_integers_are_bucketed_as_their_decimal_string_and_other_values_not_at_all() -> None:
    assert bucket_value(12345) == "12345"
    assert bucket_value(-7) == "-7"
    assert bucket_value("u1") == "u1"
    for value in (True, False, None, 1.5, ["u1"], {"id": 1}):
        assert bucket_value(value) is None


@given(
    st.text(max_size=20).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
    st.integers(0, 100_000),
    st.integers(0, 100_000),
)
def test_raising_a_rollout_percentage_only_adds_users(key: str, a: int, b: int) -> None:
    low, high = sorted((a / 1000, b / 1000))
    if sees_new_version(7, key, low):
        assert sees_new_version(7, key, high)
    assert sees_new_version(7, key, 100)
    assert not sees_new_version(7, key, 0)


def test_rollout_share_converges_to_the_percentage() -> None:
    users = [f"user-{i:05d}" for i in range(20_000)]
    share = sum(sees_new_version("r1", u, 30) for u in users) / len(users)
    assert abs(share - 0.30) < 0.015  # 4.6 standard deviations at n = 20k


def test_rollouts_pick_users_independently_of_each_other() -> None:
    users = [f"user-{i:05d}" for i in range(20_000)]
    both = sum(sees_new_version("r1", u, 50) and sees_new_version("r2", u, 50) for u in users)
    assert abs(both / len(users) - 0.25) < 0.015


def test_percentages_map_to_bucket_counts_in_steps_of_a_thousandth() -> None:
    assert percent_to_buckets(0) == 0
    assert percent_to_buckets(25) == 25_000
    assert percent_to_buckets(33.333) == 33_333
    assert percent_to_buckets(100) == BUCKETS
    for bad in (-0.001, 100.001):
        with pytest.raises(ValueError, match="between 0 and 100"):
            percent_to_buckets(bad)


def test_a_rollout_id_cannot_contain_the_separator() -> None:
    with pytest.raises(ValueError, match="cannot contain"):
        rollout_bucket("a:b", "user")


if __name__ == "__main__" and "--write" in sys.argv:
    VECTORS.write_text(
        json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {VECTORS}")


def test_a_users_bucket_is_the_same_in_other_processes_whatever_their_hash_seed() -> None:
    import os
    import subprocess

    users = [f"user-{i}" for i in range(500)] + ["ünïcødé", "", "42"]
    script = (
        "import json, sys; from sluicegate.flags.bucketing import bucket; "
        "print(json.dumps([bucket('new-checkout', 'salt', u) for u in "
        "json.loads(sys.argv[1])]))"
    )
    here = [bucket("new-checkout", "salt", u) for u in users]
    for seed in ("0", "1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps(users)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert json.loads(out) == here
