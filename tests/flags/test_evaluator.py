"""Evaluating a compiled flag set: the evaluation order, OpenFeature's reasons and error
codes, typed access, and that nothing an app passes makes it raise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.flags import (
    CompiledFlagSet,
    ErrorCode,
    Reason,
    Resolution,
    bucket,
    compile_flag_set,
    load_flag_set,
    validate_flag_set,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"
USERS = [f"user-{i:05d}" for i in range(10_000)]


def compiled(
    flags: dict[str, Any], segments: dict[str, Any] | None = None, version: int | None = None
) -> CompiledFlagSet:
    return validate_flag_set({"segments": segments or {}, "flags": flags}).compile(version)


def on_for(flags: CompiledFlagSet, key: str, ctx: dict[str, Any]) -> Any:
    return flags.evaluate(key, ctx).value


RULES: dict[str, Any] = {
    "tier": {
        "type": "string",
        "variants": {"gold": "gold", "silver": "silver", "bronze": "bronze"},
        "default_variant": "bronze",
        "rules": [
            {
                "name": "big",
                "when": {"attribute": "spend", "op": "gte", "value": 1000},
                "variant": "gold",
            },
            {
                "name": "medium",
                "when": {"attribute": "spend", "op": "gte", "value": 100},
                "variant": "silver",
            },
        ],
    },
}


# --- rules, order, reasons ------------------------------------------------------------------


def test_the_first_matching_rule_wins() -> None:
    flags = compiled(RULES)
    gold = flags.evaluate("tier", {"spend": 5000})
    assert (gold.value, gold.variant, gold.reason) == ("gold", "gold", Reason.TARGETING_MATCH)
    assert gold.flag_metadata == {"rule": 0}
    silver = flags.evaluate("tier", {"spend": 500})
    assert (silver.variant, silver.reason, silver.flag_metadata["rule"]) == (
        "silver",
        Reason.TARGETING_MATCH,
        1,
    )


def test_no_matching_rule_serves_the_default_variant_with_reason_default() -> None:
    r = compiled(RULES).evaluate("tier", {"spend": 5})
    assert (r.value, r.variant, r.reason, r.error_code) == (
        "bronze",
        "bronze",
        Reason.DEFAULT,
        None,
    )


def test_a_flag_without_rules_is_static() -> None:
    flags = compiled({"simple": {"type": "boolean", "default_variant": "on"}})
    assert flags.evaluate("simple", {"targetingKey": "u1"}) == Resolution(True, "on", Reason.STATIC)
    assert flags.evaluate("simple") == Resolution(True, "on", Reason.STATIC)


def test_the_fallthrough_variant_is_served_when_no_rule_matches() -> None:
    flags = compiled(
        {
            "f": {
                "type": "boolean",
                "rules": [
                    {"when": {"attribute": "plan", "op": "eq", "value": "free"}, "variant": "off"}
                ],
                "fallthrough": {"variant": "on"},
            }
        }
    )
    assert flags.evaluate("f", {"plan": "pro"}) == Resolution(True, "on", Reason.DEFAULT)
    assert flags.evaluate("f", {"plan": "free"}).reason is Reason.TARGETING_MATCH


def test_the_kill_switch_serves_the_default_variant_whatever_the_rules_say() -> None:
    flags = compiled(
        {
            "f": {
                "type": "boolean",
                "enabled": False,
                "rules": [{"when": {"attribute": "a", "op": "exists"}, "variant": "on"}],
                "fallthrough": {"variant": "on"},
            }
        }
    )
    assert flags.evaluate("f", {"a": 1}) == Resolution(False, "off", Reason.DISABLED)


def test_the_flag_set_version_is_in_every_resolutions_metadata() -> None:
    flags = compiled(RULES, version=12)
    assert flags.evaluate("tier", {"spend": 5000}).flag_metadata == {"rule": 0, "version": 12}
    assert flags.evaluate("tier", {}).flag_metadata == {"version": 12}
    assert flags.version == 12


# --- segments -------------------------------------------------------------------------------


def test_a_segment_member_gets_the_rule_and_others_the_split() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    for user in ("alice", "bob", "user-00100"):
        r = flags.evaluate("new-checkout", {"targetingKey": user})
        assert (r.value, r.reason) == (True, Reason.TARGETING_MATCH)
    r = flags.evaluate("new-checkout", {"targetingKey": "user-00042"})
    assert r.reason is Reason.SPLIT


def test_a_hundred_thousand_id_segment_in_a_flag() -> None:
    ids = [f"member-{i:06d}" for i in range(100_000)]
    flags = compiled(
        {"f": {"type": "boolean", "rules": [{"when": {"segment": "big"}, "variant": "on"}]}},
        {"big": {"ids": ids}},
    )
    assert all(flags.evaluate("f", {"targetingKey": u}).value is True for u in ids[::97])
    assert flags.evaluate("f", {"targetingKey": "member-100000"}).value is False


# --- splits ---------------------------------------------------------------------------------


def test_a_split_follows_the_published_buckets() -> None:
    flags = compiled(
        {
            "f": {
                "type": "boolean",
                "salt": "s1",
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]
                },
            }
        }
    )
    for user in USERS[:2000]:
        r = flags.evaluate("f", {"targetingKey": user})
        assert r.reason is Reason.SPLIT
        assert r.value is (bucket("f", "s1", user) < 25_000)


def test_a_three_way_split_converges_to_its_weights() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    counts: dict[str, int] = {}
    for user in USERS:
        ctx = {"targetingKey": user, "email": "x@gmail.example"}
        if flags.evaluate("new-checkout", ctx).value:
            variant = flags.evaluate("checkout-button", ctx).variant
            counts[variant or ""] = counts.get(variant or "", 0) + 1
    total = sum(counts.values())
    assert set(counts) == {"green", "blue", "orange"}
    assert all(abs(n / total - 1 / 3) < 0.05 for n in counts.values()), counts


def test_a_zero_weight_variant_is_never_chosen() -> None:
    flags = compiled(
        {
            "f": {
                "type": "string",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "default_variant": "a",
                "fallthrough": {
                    "split": [
                        {"variant": "a", "weight": 0},
                        {"variant": "b", "weight": 100},
                        {"variant": "c", "weight": 0},
                    ]
                },
            }
        }
    )
    assert {flags.evaluate("f", {"targetingKey": u}).variant for u in USERS[:3000]} == {"b"}


def test_a_split_can_bucket_by_another_attribute() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    base = {"country": "DE", "appVersion": "4.2.0"}
    variants = {
        flags.evaluate("search-backend", {**base, "accountId": "acme", "targetingKey": u}).variant
        for u in USERS[:200]
    }
    assert len(variants) == 1  # everyone in account acme searches the same way


def test_changing_the_salt_redraws_the_split() -> None:
    def share_on(salt: str) -> set[str]:
        flags = compiled(
            {
                "f": {
                    "type": "boolean",
                    "salt": salt,
                    "fallthrough": {
                        "split": [{"variant": "on", "weight": 50}, {"variant": "off", "weight": 50}]
                    },
                }
            }
        )
        return {u for u in USERS if flags.evaluate("f", {"targetingKey": u}).value}

    a, b = share_on(""), share_on("v2")
    overlap = len(a & b) / len(a)
    assert 0.45 < overlap < 0.55  # independent draws overlap by about half


def test_a_split_without_a_targeting_key_is_an_error_with_the_callers_default() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    r = flags.evaluate("new-checkout", {"country": "DE"}, default=False)
    assert (r.value, r.variant, r.reason, r.error_code) == (
        False,
        None,
        Reason.ERROR,
        ErrorCode.TARGETING_KEY_MISSING,
    )
    assert "targeting key" in (r.error_message or "")


def test_a_split_by_a_missing_attribute_is_an_invalid_context() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    r = flags.evaluate(
        "search-backend", {"country": "DE", "appVersion": "5.0.0", "targetingKey": "u1"}, "classic"
    )
    assert (r.value, r.error_code) == ("classic", ErrorCode.INVALID_CONTEXT)
    assert "accountId" in (r.error_message or "")


def test_integer_targeting_keys_bucket_like_their_decimal_string() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    for uid in range(500):
        assert (
            flags.evaluate("new-checkout", {"targetingKey": uid}).variant
            == flags.evaluate("new-checkout", {"targetingKey": str(uid)}).variant
        )


# --- prerequisites ----------------------------------------------------------------------------


PREREQ: dict[str, Any] = {
    "payments-v2": {
        "type": "boolean",
        "rules": [{"when": {"attribute": "region", "op": "eq", "value": "eu"}, "variant": "on"}],
    },
    "theme": {
        "type": "string",
        "variants": {"dark": "dark", "light": "light"},
        "default_variant": "light",
        "rules": [{"when": {"attribute": "likes", "op": "eq", "value": "dark"}, "variant": "dark"}],
    },
    "one-click": {
        "type": "boolean",
        "default_variant": "off",
        "prerequisites": [{"flag": "payments-v2"}, {"flag": "theme", "variant": "dark"}],
        "fallthrough": {"variant": "on"},
    },
}


def test_a_flag_is_on_only_when_its_prerequisites_are_met() -> None:
    flags = compiled(PREREQ)
    assert flags.evaluate("one-click", {"region": "eu", "likes": "dark"}) == Resolution(
        True, "on", Reason.DEFAULT
    )
    for ctx in ({"region": "us", "likes": "dark"}, {"region": "eu", "likes": "light"}, {}):
        assert flags.evaluate("one-click", ctx) == Resolution(False, "off", Reason.DEFAULT)


def test_a_killed_prerequisite_turns_its_dependents_off() -> None:
    flags = dict(PREREQ)
    flags["payments-v2"] = {
        **PREREQ["payments-v2"],
        "enabled": False,
        "default_variant": "on",
    }  # even though it serves on
    compiled_flags = compiled(flags)
    assert compiled_flags.evaluate("payments-v2", {}).value is True
    assert compiled_flags.evaluate("one-click", {"region": "eu", "likes": "dark"}).value is False


def test_a_prerequisite_that_cannot_be_evaluated_is_not_met() -> None:
    flags = compiled(
        {
            "rollout": {
                "type": "boolean",
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 100}, {"variant": "off", "weight": 0}]
                },
            },
            "child": {
                "type": "boolean",
                "prerequisites": [{"flag": "rollout"}],
                "fallthrough": {"variant": "on"},
            },
        }
    )
    assert flags.evaluate("child", {}).value is False  # no targeting key for the parent
    assert flags.evaluate("child", {"targetingKey": "u"}).value is True


def test_a_cycle_is_rejected_before_compiling() -> None:
    with pytest.raises(SpecError, match="prerequisite cycle: a -> b -> a"):
        compiled(
            {
                "a": {"type": "boolean", "prerequisites": [{"flag": "b"}]},
                "b": {"type": "boolean", "prerequisites": [{"flag": "a"}]},
            }
        )


# --- errors and types -------------------------------------------------------------------------


def test_an_unknown_flag_is_flag_not_found_with_the_callers_default() -> None:
    r = compiled(RULES).evaluate("nope", {}, default="fallback")
    assert (r.value, r.variant, r.reason, r.error_code) == (
        "fallback",
        None,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )


def test_asking_a_boolean_of_a_string_flag_is_a_type_mismatch() -> None:
    flags = compiled(RULES)
    r = flags.evaluate("tier", {"spend": 5000}, default=False, expected_type="boolean")
    assert (r.value, r.reason, r.error_code) == (False, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert flags.get_boolean("tier", {"spend": 5000}, True) is True
    assert flags.get_string("tier", {"spend": 5000}, "none") == "gold"


def test_typed_helpers_return_values_or_the_default() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    ctx = {"targetingKey": "alice", "tier": "business", "now": "2026-11-25T00:00:00Z"}
    assert flags.get_boolean("new-checkout", ctx, False) is True
    assert flags.get_number("free-shipping-threshold", ctx, 0) == 29
    assert flags.get_object("checkout-limits", ctx, {})["allow_invoice"] is True
    assert flags.get_string("checkout-button", ctx, "x") in {"#1a7f37", "#0969da", "#d1481f"}
    assert flags.get_number("new-checkout", ctx, 7) == 7


def test_object_values_are_copies_the_caller_may_change() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    first = flags.get_object("checkout-limits", {}, {})
    first["max_items"] = 0
    assert flags.get_object("checkout-limits", {}, {})["max_items"] == 50


@pytest.mark.parametrize(
    "context",
    [
        None,
        {},
        [],
        "user",
        42,
        {"targetingKey": None},
        {"targetingKey": ["u"]},
        {"targetingKey": "\ud800"},
        {"targetingKey": float("nan")},
        {1: 2},
    ],
)
def test_odd_contexts_never_raise(context: Any) -> None:
    flags = load_flag_set(EXAMPLE).compile()
    for key in flags:
        r = flags.evaluate(key, context, default="d")
        assert isinstance(r, Resolution)
        if r.reason is Reason.ERROR:
            assert r.value == "d" and r.error_code is not None


def test_a_context_that_is_not_a_mapping_is_an_invalid_context() -> None:
    r = load_flag_set(EXAMPLE).compile().evaluate("new-checkout", ["u1"], default=False)
    assert (r.value, r.error_code) == (False, ErrorCode.INVALID_CONTEXT)


def test_an_unexpected_failure_is_reported_not_raised() -> None:
    class Hostile(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("boom")

    r = compiled(RULES).evaluate("tier", Hostile(), default="x")
    assert (r.value, r.error_code, r.error_message) == (
        "x",
        ErrorCode.GENERAL,
        "RuntimeError: boom",
    )


# --- evaluate_variant, the set itself, compiling ----------------------------------------------


def test_evaluate_variant_gives_the_variant_name_for_routing() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    assert flags.evaluate_variant("new-checkout", {"targetingKey": "alice"}) == "on"
    assert flags.evaluate_variant("legacy-coupons", {}) == "off"
    assert flags.evaluate_variant("nope", {}) is None
    assert flags.evaluate_variant("new-checkout", {}) is None  # no targeting key


def test_the_set_lists_its_flags_and_their_types() -> None:
    flags = load_flag_set(EXAMPLE).compile()
    assert len(flags) == 6 and "new-checkout" in flags and "nope" not in flags
    assert flags.keys()[0] == "new-checkout"
    assert flags.flag_type("checkout-limits") == "object"
    assert flags.flag_type("nope") is None


def test_compiling_a_document_that_was_not_validated_raises_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"flags.f: not a validated flag set"):
        compile_flag_set(
            {
                "flags": {
                    "f": {"type": "boolean", "variants": {"on": True}, "default_variant": "off"}
                }
            }
        )
    with pytest.raises(SpecError, match="prerequisite cycle"):
        compile_flag_set(
            {
                "flags": {
                    "a": {
                        "type": "boolean",
                        "variants": {"on": True},
                        "default_variant": "on",
                        "prerequisites": [{"flag": "a"}],
                    }
                }
            }
        )


def test_the_evaluator_imports_no_pydantic_and_no_yaml() -> None:
    import subprocess

    code = (
        "import sys, sluicegate.flags.evaluator, sluicegate.flags.bucketing, "
        "sluicegate.flags._compile, sluicegate.flags._explain; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'yaml', 'sqlalchemy', 'httpx', 'fastapi', 'uvloop', 'scipy'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_thousand_flag_set_compiles_and_evaluates() -> None:
    flags = {
        f"flag-{i:04d}": {
            "type": "boolean",
            "rules": [
                {
                    "when": {"attribute": "plan", "op": "in", "value": ["pro", "team"]},
                    "variant": "on",
                }
            ],
            "fallthrough": {
                "split": [{"variant": "on", "weight": 10}, {"variant": "off", "weight": 90}]
            },
        }
        for i in range(1000)
    }
    compiled_flags = compiled(flags)
    assert len(compiled_flags) == 1000
    assert compiled_flags.evaluate("flag-0999", {"plan": "pro"}).value is True
