"""Explain mode says which rule matched and why the earlier ones did not, with the values the
context held, and the bucket a split computed; it agrees with the evaluation it explains."""

from __future__ import annotations

from pathlib import Path

from sluicegate.flags import Reason, bucket, load_flag_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"
FLAGS = load_flag_set(EXAMPLE).compile(version=4)


def test_a_split_user_is_told_the_rule_that_failed_and_their_bucket() -> None:
    e = FLAGS.explain("new-checkout", {"targetingKey": "user-00042"})
    b = bucket("new-checkout", "", "user-00042")
    variant = "on" if b < 25_000 else "off"
    assert e.resolution == FLAGS.evaluate("new-checkout", {"targetingKey": "user-00042"})
    assert e.render() == "\n".join(
        [
            f"new-checkout: SPLIT -> variant {variant!r}, value {variant == 'on'}",
            "  rules[0] beta: no match",
            "    segment beta-testers: no",
            "      targetingKey among the 7 listed ids: no (targetingKey = 'user-00042')",
            "  fallthrough: split (on 25%, off 75%)",
            f"    bucket of targetingKey 'user-00042' = {b:,} of 100,000 -> {variant!r} "
            f"(buckets {'0..24,999' if variant == 'on' else '25,000..99,999'})",
        ]
    )


def test_the_matching_rule_shows_each_condition_with_the_value_it_saw() -> None:
    ctx = {"targetingKey": "u1", "tier": "standard", "vatId": "DE123456789"}
    e = FLAGS.explain("checkout-limits", ctx)
    assert e.resolution.reason is Reason.TARGETING_MATCH
    assert e.render().splitlines()[1:] == [
        "  rules[0] business-accounts: matched: serve variant 'business'",
        "    any: yes",
        "      tier eq 'business': no (tier = 'standard')",
        "      vatId matches '^[A-Z]{2}[0-9A-Z]{8,12}$': yes (vatId = 'DE123456789')",
    ]


def test_a_failed_prerequisite_is_named() -> None:
    e = FLAGS.explain("checkout-button", {"targetingKey": "user-00042", "email": "a@b.c"})
    first = e.steps[0]
    if FLAGS.evaluate("new-checkout", {"targetingKey": "user-00042"}).value:
        assert first.verdict == "met"
    else:
        assert (first.subject, first.verdict) == ("prerequisite new-checkout", "not met")
        assert first.details == ("needs value true; got SPLIT, variant 'off'",)
        assert e.steps[-1].verdict == "default variant 'green'"
        assert e.resolution.reason is Reason.DEFAULT


def test_a_killed_flag_says_so() -> None:
    e = FLAGS.explain("legacy-coupons", {})
    assert [(s.subject, s.verdict) for s in e.steps] == [
        ("enabled", "no: the kill switch serves the default variant")
    ]


def test_a_missing_attribute_is_shown_as_missing() -> None:
    e = FLAGS.explain("search-backend", {"targetingKey": "u1"})
    assert (
        "        country in ['AT', 'BE', 'DE', 'DK', 'ES', 'FI', 'FR', 'IE', 'IT', 'NL', "
        "'PL', 'SE']: no (country is missing)" in e.render().splitlines()
    )
    assert e.steps[-1].subject == "fallthrough"


def test_explain_of_an_unknown_flag_carries_the_error() -> None:
    e = FLAGS.explain("nope", {}, default=1)
    assert e.steps == ()
    assert e.render() == "nope: ERROR, value 1 (FLAG_NOT_FOUND: no flag 'nope' in this set)"


def test_explain_as_json_data() -> None:
    data = FLAGS.explain("new-checkout", {"targetingKey": "alice"}).as_dict()
    assert data["flag"] == "new-checkout"
    assert (data["value"], data["variant"], data["reason"]) == (True, "on", "TARGETING_MATCH")
    assert data["flag_metadata"] == {"rule": 0, "version": 4}
    assert data["steps"][0]["subject"] == "rules[0] beta"
