"""Stickiness cookies: signed, expiring, and ignored when anything is off."""

from __future__ import annotations

import pytest

from sluicegate.router import StickyCodec
from sluicegate.router._sticky import find_cookie

KEY = b"k" * 32


def test_issued_cookie_verifies_to_its_group_until_it_expires() -> None:
    codec = StickyCodec(KEY, "sluice_tg")
    value = codec.issue("green", expires=1000)
    assert codec.verify(value, now=999) == "green"
    assert codec.verify(value, now=1000) is None


def test_forged_group_name_is_ignored() -> None:
    codec = StickyCodec(KEY, "sluice_tg")
    value = codec.issue("blue", expires=1000)
    forged = value.replace(b"blue", b"green", 1)
    assert codec.verify(forged, now=0) is None


def test_extended_expiry_is_ignored() -> None:
    codec = StickyCodec(KEY, "sluice_tg")
    group, _expires, mac = codec.issue("blue", expires=1000).split(b".")
    assert codec.verify(b".".join((group, b"99999999", mac)), now=0) is None


def test_cookie_signed_with_another_key_or_cookie_name_is_ignored() -> None:
    value = StickyCodec(b"x" * 32, "sluice_tg").issue("blue", 1000)
    assert StickyCodec(KEY, "sluice_tg").verify(value, 0) is None
    value = StickyCodec(KEY, "other").issue("blue", 1000)
    assert StickyCodec(KEY, "sluice_tg").verify(value, 0) is None


@pytest.mark.parametrize("junk", [b"", b"blue", b"blue.12", b"a.b.c", b"\xff.1.x", b"..."])
def test_malformed_values_are_ignored(junk: bytes) -> None:
    assert StickyCodec(KEY, "sluice_tg").verify(junk, 0) is None


def test_group_names_with_dots_round_trip() -> None:
    codec = StickyCodec(KEY, "tg")
    assert codec.verify(codec.issue("shop.v2", 50), 10) == "shop.v2"


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        StickyCodec(b"short", "tg")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"sluice_tg=abc", b"abc"),
        (b"a=1; sluice_tg=abc; b=2", b"abc"),
        (b"a=1;sluice_tg=abc", b"abc"),
        (b"xsluice_tg=evil; sluice_tg=good", b"good"),
        (b"xsluice_tg=evil", None),
        (b"a=1", None),
    ],
)
def test_find_cookie_takes_only_the_exact_name(header: bytes, expected: bytes | None) -> None:
    assert find_cookie(header, b"sluice_tg=") == expected
