"""Properties over arbitrary input (hypothesis): evaluation never raises, splits converge to
their weights, a user's bucket is stable across compilations, a segment member always
matches, and explain agrees with the evaluation it explains."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluicegate.flags import Reason, Resolution, bucket, load_flag_set, validate_flag_set
from sluicegate.flags._conditions import compile_condition
from sluicegate.flags.model import OPERATORS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"
FLAGS = load_flag_set(EXAMPLE).compile()
ATTRIBUTES = [
    "targetingKey",
    "userId",
    "email",
    "country",
    "appVersion",
    "accountId",
    "now",
    "tier",
    "vatId",
    "plan",
    "spend",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "DE",
            "alice",
            "4.2.0",
            "2026-11-25T00:00:00Z",
            "business",
            "@shop.example",
            "a@shop.example",
            "\ud800",
            "1e309",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=8,
)
contexts = st.dictionaries(st.sampled_from(ATTRIBUTES) | st.text(max_size=10), values, max_size=8)
anything = contexts | values | st.builds(object)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    anything,
    st.sampled_from([*FLAGS.keys(), "nope"]),
    st.sampled_from([None, "boolean", "string", "number", "object"]),
)
def test_no_context_ever_makes_an_evaluation_raise(
    context: Any, key: str, expected: str | None
) -> None:
    r = FLAGS.evaluate(key, context, default="d", expected_type=expected)
    assert isinstance(r, Resolution)
    if r.reason is Reason.ERROR:
        assert r.value == "d" and r.variant is None and r.error_code is not None
    else:
        assert r.variant is not None and r.error_code is None
    FLAGS.evaluate_variant(key, context)
    FLAGS.explain(key, context, default="d")


OPERANDS: dict[str, Any] = {
    "eq": "x",
    "neq": 3,
    "in": ["a", 1, True],
    "not_in": [2.5, "b"],
    "contains": "a",
    "starts_with": ["a", "b"],
    "ends_with": "z",
    "matches": r"^\w+$",
    "lt": 5,
    "lte": 5.5,
    "gt": -1,
    "gte": 0,
    "semver_eq": "1.0.0",
    "semver_lt": "2.0.0-rc.1",
    "semver_lte": "1.2.3",
    "semver_gt": "0.9.0",
    "semver_gte": "1.0.0",
    "before": "2026-01-01",
    "after": "2026-01-01T00:00:00+05:00",
}


@settings(max_examples=300)
@given(st.sampled_from(sorted(OPERATORS)), values)
def test_every_operator_answers_a_bool_for_any_value(op: str, value: Any) -> None:
    spec = {"attribute": "a", "op": op, **({"value": OPERANDS[op]} if op != "exists" else {})}
    test = compile_condition(spec, {}).test
    assert test({"a": value}) in (True, False)


def split_set(weights: list[int], salt: str = "") -> Any:
    variants = {f"v{i}": f"v{i}" for i in range(len(weights))}
    return validate_flag_set(
        {
            "flags": {
                "f": {
                    "type": "string",
                    "variants": variants,
                    "default_variant": "v0",
                    "salt": salt,
                    "fallthrough": {
                        "split": [{"variant": f"v{i}", "weight": w} for i, w in enumerate(weights)]
                    },
                }
            }
        }
    ).compile()


@st.composite
def weight_lists(draw: st.DrawFn) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=4)))
    bounds = [0, *cuts, 100]
    return [b - a for a, b in pairwise(bounds)]


@settings(max_examples=15, deadline=None)
@given(weight_lists(), st.text(alphabet="abc-", max_size=4))
def test_splits_converge_to_their_weights(weights: list[int], salt: str) -> None:
    flags = split_set(weights, salt)
    n = 8000
    counts = [0] * len(weights)
    for i in range(n):
        variant = flags.evaluate("f", {"targetingKey": f"user-{i}"}).variant
        counts[int((variant or "v0")[1:])] += 1
    for weight, count in zip(weights, counts, strict=True):
        p = weight / 100
        sigma = (p * (1 - p) / n) ** 0.5
        assert abs(count / n - p) <= 5 * sigma + 1e-9, (weights, counts)


@settings(max_examples=200)
@given(st.text(max_size=40).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
def test_a_users_bucket_is_stable_across_compilations(user: str) -> None:
    a, b = split_set([30, 70]), split_set([30, 70])
    first = a.evaluate("f", {"targetingKey": user})
    assert (
        first == a.evaluate("f", {"targetingKey": user}) == b.evaluate("f", {"targetingKey": user})
    )
    assert first.variant == ("v0" if bucket("f", "", user) < 30_000 else "v1")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=200, unique=True), st.data())
def test_a_segment_member_always_matches(ids: list[str], data: st.DataObject) -> None:
    flags = validate_flag_set(
        {
            "segments": {"s": {"ids": ids}},
            "flags": {
                "f": {"type": "boolean", "rules": [{"when": {"segment": "s"}, "variant": "on"}]}
            },
        }
    ).compile()
    member = data.draw(st.sampled_from(ids))
    r = flags.evaluate("f", {"targetingKey": member, "other": data.draw(values)})
    assert (r.value, r.reason) == (True, Reason.TARGETING_MATCH)
    outsider = data.draw(st.text(max_size=20).filter(lambda s: s not in ids))
    assert flags.evaluate("f", {"targetingKey": outsider}).value is False


@settings(max_examples=200)
@given(contexts, st.sampled_from(FLAGS.keys()))
def test_explain_agrees_with_the_evaluation(context: dict[str, Any], key: str) -> None:
    r = FLAGS.evaluate(key, context)
    e = FLAGS.explain(key, context)
    assert e.resolution == r
    matched = [s for s in e.steps if s.verdict.startswith("matched")]
    if "rule" in r.flag_metadata:
        assert matched and matched[0].subject.startswith(f"rules[{r.flag_metadata['rule']}]")
    else:
        assert not matched or r.reason is Reason.ERROR


@settings(max_examples=300)
@given(anything, st.sampled_from([*FLAGS.keys(), "nope"]))
def test_typed_getters_are_evaluate_with_the_type(context: Any, key: str) -> None:
    for getter, kind, default in (
        (FLAGS.get_boolean, "boolean", False),
        (FLAGS.get_string, "string", "d"),
        (FLAGS.get_number, "number", -1),
        (FLAGS.get_object, "object", {"d": 1}),
    ):
        assert getter(key, context, default) == FLAGS.evaluate(key, context, default, kind).value
