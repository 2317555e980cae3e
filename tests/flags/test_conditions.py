"""Every operator, table-driven: what matches, what does not, and that a missing attribute or
a value of another kind never matches (also for the negative operators) and never raises."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.flags._conditions import compile_condition, compile_segment, targeting_key

MISSING = object()

# (op, operand, attribute value, expected)
CASES: list[tuple[str, Any, Any, bool]] = [
    ("eq", "US", "US", True),
    ("eq", "US", "us", False),
    ("eq", 3, 3, True),
    ("eq", 3, 3.0, True),
    ("eq", 1, True, False),  # True is not 1
    ("eq", True, 1, False),
    ("eq", True, True, True),
    ("eq", "3", 3, False),  # no coercion between kinds
    ("eq", "US", ["US"], False),
    ("neq", "US", "DE", True),
    ("neq", "US", "US", False),
    ("neq", "US", 5, False),  # another kind: no match, even negated
    ("neq", 5, 6, True),
    ("in", ["US", "DE"], "DE", True),
    ("in", ["US", "DE"], "FR", False),
    ("in", [1, 2, 3], 2, True),
    ("in", [1, 2, 3], 2.0, True),
    ("in", [1, 2, 3], True, False),
    ("in", ["US", 1], 1, True),
    ("in", ["US"], ["US"], False),  # unhashable value: no match, no crash
    ("in", ["US"], {"a": 1}, False),
    ("not_in", ["US", "DE"], "FR", True),
    ("not_in", ["US", "DE"], "US", False),
    ("not_in", ["US", "DE"], 7, False),
    ("not_in", ["US"], ["FR"], False),
    ("contains", "beta", "public-beta-2", True),
    ("contains", "beta", "stable", False),
    ("contains", "admin", ["user", "admin"], True),
    ("contains", "admin", ["user"], False),
    ("contains", 3, [1, 2, 3], True),
    ("contains", 3, [1, 2, True], False),
    ("contains", "x", 5, False),
    ("starts_with", "user-", "user-1", True),
    ("starts_with", "user-", "admin-1", False),
    ("starts_with", ["a", "b"], "bob", True),
    ("starts_with", "1", 12, False),
    ("ends_with", "@shop.example", "ann@shop.example", True),
    ("ends_with", "@shop.example", "ann@elsewhere.example", False),
    ("ends_with", ["@a.x", "@b.x"], "z@b.x", True),
    ("matches", r"^u\d+$", "u123", True),
    ("matches", r"^u\d+$", "u12a", False),
    ("matches", r"\d", "abc7def", True),  # searched anywhere
    ("matches", r"\d", 7, False),
    ("lt", 10, 9, True),
    ("lt", 10, 10, False),
    ("lte", 10, 10, True),
    ("gt", 10, 10.5, True),
    ("gt", 10, 10, False),
    ("gte", 10, 10, True),
    ("gte", 10, 9.99, False),
    ("lt", 10, "9", False),  # a numeric string is not a number
    ("gt", 0, True, False),  # a bool is not a number
    ("lt", 10, float("nan"), False),
    ("semver_eq", "1.2.3", "1.2.3", True),
    ("semver_eq", "1.2.3", "v1.2.3", True),
    ("semver_eq", "1.2.0", "1.2", True),
    ("semver_eq", "1.2.3", "1.2.3+build.7", True),  # build metadata is ignored
    ("semver_lt", "1.10.0", "1.9.9", True),  # numeric, not text, order
    ("semver_lt", "1.0.0", "1.0.0-rc.1", True),  # a pre-release precedes its release
    ("semver_lt", "1.0.0-rc.10", "1.0.0-rc.2", True),
    ("semver_lt", "1.0.0-alpha", "1.0.0-beta", False),
    ("semver_lt", "1.0.0-alpha.1", "1.0.0-alpha", True),
    ("semver_lt", "1.0.0-alpha.beta", "1.0.0-alpha.1", True),  # numbers before text
    ("semver_lte", "2.0.0", "2.0.0", True),
    ("semver_gt", "2.0.0", "10.0.0", True),
    ("semver_gt", "2.0.0", "2.0.0", False),
    ("semver_gte", "4.2.0", "4.2.0", True),
    ("semver_gte", "4.2.0", "4.1.99", False),
    ("semver_gt", "1.0.0", "not-a-version", False),
    ("semver_gt", "1.0.0", 2, False),
    ("semver_gt", "1.0.0", "01.2.3", False),  # leading zeros are not semver
    ("before", "2026-03-01T00:00:00Z", "2026-02-28T23:59:59Z", True),
    ("before", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", False),
    ("before", "2026-03-01", "2026-03-01T01:00:00+02:00", True),  # 23:00 UTC the day before
    ("after", "2026-03-01", "2026-03-01T00:00:01", True),  # no offset = UTC
    ("after", "2026-03-01T00:00:00Z", 1772323200.5, True),  # epoch seconds
    ("after", "2026-03-01T00:00:00Z", 1772323200, False),  # the same instant
    ("before", "2026-03-01T00:00:00Z", "yesterday", False),
    ("before", "2026-03-01T00:00:00Z", True, False),
]


def condition(op: str, operand: Any, attribute: str = "a") -> Any:
    return compile_condition({"attribute": attribute, "op": op, "value": operand}, {}).test


@pytest.mark.parametrize(
    ("op", "operand", "value", "expected"), CASES, ids=[f"{c[0]}-{c[1]!r}-{c[2]!r}" for c in CASES]
)
def test_operator(op: str, operand: Any, value: Any, expected: bool) -> None:
    assert condition(op, operand)({"a": value}) is expected


OPERATORS = sorted({c[0] for c in CASES})


def test_the_table_covers_every_operator_but_exists() -> None:
    from sluicegate.flags.model import OPERATORS as ALL

    assert set(OPERATORS) == set(ALL) - {"exists"}


@pytest.mark.parametrize("op", OPERATORS)
def test_a_missing_or_null_attribute_never_matches(op: str) -> None:
    operand = next(c[1] for c in CASES if c[0] == op)
    test = condition(op, operand)
    assert test({}) is False
    assert test({"a": None}) is False
    assert test({"b": "x"}) is False


def test_exists_matches_any_present_non_null_value() -> None:
    test = compile_condition({"attribute": "plan", "op": "exists"}, {}).test
    assert [
        test(c)
        for c in ({"plan": "pro"}, {"plan": 0}, {"plan": False}, {"plan": ""}, {"plan": None}, {})
    ] == [True, True, True, True, False, False]


def test_all_any_and_not_combine_conditions() -> None:
    spec = {
        "all": [
            {"attribute": "country", "op": "in", "value": ["DE", "AT"]},
            {
                "any": [
                    {"attribute": "plan", "op": "eq", "value": "pro"},
                    {"attribute": "seats", "op": "gte", "value": 10},
                ]
            },
            {"not": {"attribute": "email", "op": "ends_with", "value": "@test"}},
        ]
    }
    test = compile_condition(spec, {}).test
    assert test({"country": "DE", "plan": "pro"})
    assert test({"country": "AT", "seats": 12, "email": "x@real"})
    assert not test({"country": "DE", "plan": "free", "seats": 3})
    assert not test({"country": "FR", "plan": "pro"})
    assert not test({"country": "DE", "plan": "pro", "email": "x@test"})


def test_not_of_a_missing_attribute_is_true() -> None:
    test = compile_condition({"not": {"attribute": "country", "op": "eq", "value": "US"}}, {}).test
    assert test({}) is True
    assert test({"country": "US"}) is False


def test_the_targeting_key_falls_back_to_user_id() -> None:
    assert targeting_key({"targetingKey": "a", "userId": "b"}) == "a"
    assert targeting_key({"userId": "b"}) == "b"
    assert targeting_key({}) is None
    test = condition("eq", "u1", attribute="targetingKey")
    assert test({"userId": "u1"}) and test({"targetingKey": "u1"})


def test_a_listed_segment_matches_its_ids_by_targeting_key_and_integers_as_decimals() -> None:
    seg = compile_segment("beta", {"ids": ["u1", "42"]}, {})
    assert [
        seg.test(c)
        for c in (
            {"targetingKey": "u1"},
            {"userId": "u1"},
            {"targetingKey": 42},
            {"targetingKey": "u2"},
            {"targetingKey": True},
            {"targetingKey": ["u1"]},
            {},
        )
    ] == [True, True, True, False, False, False, False]


def test_a_segment_lists_ids_of_another_attribute() -> None:
    seg = compile_segment("acme", {"attribute": "accountId", "ids": ["acme"]}, {})
    assert seg.test({"accountId": "acme", "targetingKey": "u1"})
    assert not seg.test({"targetingKey": "acme"})


def test_a_segment_with_ids_and_a_rule_takes_members_of_either() -> None:
    staff = compile_segment(
        "staff",
        {
            "ids": ["contractor-7"],
            "when": {"attribute": "email", "op": "ends_with", "value": "@shop.example"},
        },
        {},
    )
    assert staff.test({"targetingKey": "contractor-7"})
    assert staff.test({"targetingKey": "u1", "email": "ann@shop.example"})
    assert not staff.test({"targetingKey": "u1", "email": "ann@gmail.example"})


def test_a_segment_can_refer_to_another_segment() -> None:
    beta = compile_segment("beta", {"ids": ["u1"]}, {})
    wide = compile_segment(
        "wide",
        {"when": {"any": [{"segment": "beta"}, {"attribute": "plan", "op": "eq", "value": "pro"}]}},
        {"beta": beta},
    )
    assert wide.test({"targetingKey": "u1"}) and wide.test({"plan": "pro"})
    assert not wide.test({"targetingKey": "u2"})


def test_a_hundred_thousand_id_segment_matches_every_member_and_no_one_else() -> None:
    ids = [f"user-{i:06d}" for i in range(100_000)]
    seg = compile_segment("big", {"ids": ids}, {})
    assert all(seg.test({"targetingKey": u}) for u in ids)
    assert not any(seg.test({"targetingKey": f"user-{i:06d}"}) for i in range(100_000, 101_000))
