"""The flag-set document: what is valid, every problem reported at once with its path, the
published JSON Schema agreeing with the example, the normal form."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sluicegate.errors import ConfigFileError, SpecError
from sluicegate.flags import flag_set_schema, load_flag_set, parse_flag_set, validate_flag_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"

BASE: dict[str, Any] = {
    "segments": {"beta-testers": {"ids": ["u1", "u2"]}},
    "flags": {
        "new-checkout": {
            "type": "boolean",
            "rules": [{"name": "beta", "when": {"segment": "beta-testers"}, "variant": "on"}],
            "fallthrough": {
                "split": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]
            },
        },
        "color": {
            "type": "string",
            "variants": {"red": "#f00", "blue": "#00f"},
            "default_variant": "red",
        },
    },
}


def doc(**flags: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out["flags"].update(flags)
    return out


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        validate_flag_set(data, source="flags.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def only_problem(data: Any) -> tuple[str, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# --- valid documents ---------------------------------------------------------------------


def test_the_example_is_valid_and_its_normal_form_fills_in_defaults() -> None:
    flags = load_flag_set(EXAMPLE)
    assert set(flags.flags) == {
        "new-checkout",
        "checkout-button",
        "search-backend",
        "free-shipping-threshold",
        "checkout-limits",
        "legacy-coupons",
    }
    normal = flags.document()
    checkout = normal["flags"]["new-checkout"]
    assert checkout["variants"] == {"on": True, "off": False}
    assert checkout["default_variant"] == "off"
    assert checkout["enabled"] is True and checkout["salt"] == ""
    assert normal["flags"]["legacy-coupons"]["enabled"] is False


def test_the_normal_form_validates_to_itself() -> None:
    normal = load_flag_set(EXAMPLE).document()
    assert validate_flag_set(json.loads(json.dumps(normal))).document() == normal


def test_yaml_on_and_off_are_variant_names_not_booleans() -> None:
    flags = parse_flag_set("""
flags:
  f:
    type: string
    variants: {on: "yes", off: "no"}
    default_variant: off
""")
    assert flags.flags["f"].variants == {"on": "yes", "off": "no"}


def test_numeric_segment_ids_are_read_as_strings() -> None:
    flags = parse_flag_set("segments:\n  s: {ids: [12345, u1]}\n")
    assert flags.segments["s"].ids == ["12345", "u1"]


def test_an_empty_document_is_an_empty_flag_set() -> None:
    assert validate_flag_set({}).document() == {"description": "", "segments": {}, "flags": {}}


# --- every problem, with its path -----------------------------------------------------------


def test_an_invalid_set_lists_every_problem_with_its_path() -> None:
    data = doc()
    checkout = data["flags"]["new-checkout"]
    checkout["rules"].append(
        {
            "when": {"attribute": "plan", "op": "matches", "value": "(("},
            "split": [{"variant": "blue", "weight": 50}, {"variant": "on", "weight": 40}],
        }
    )
    data["flags"]["color"]["variants"]["green"] = 7
    data["flags"]["color"]["default_variant"] = "purple"
    data["flags"]["broken"] = {
        "type": "number",
        "variants": {"one": 1},
        "default_variant": "one",
        "enabled": "yes",
    }
    assert problems_of(data) == [
        (
            "flags.new-checkout.rules[1].when.value",
            "not a valid regular expression: missing ), unterminated subpattern at position 1",
        ),
        ("flags.broken.enabled", "Input should be a valid boolean"),
        (
            "flags.new-checkout.rules[1].split[0].variant",
            "unknown variant 'blue' (known: 'off', 'on')",
        ),
        ("flags.new-checkout.rules[1].split", "weights sum to 90, not 100"),
        ("flags.color.variants.green", "a string flag's variant value is a string, not number"),
        ("flags.color.default_variant", "unknown variant 'purple' (known: 'blue', 'green', 'red')"),
    ]


@pytest.mark.parametrize(
    ("flag", "where", "message"),
    [
        (
            {"type": "boolean", "default_variant": "maybe"},
            "default_variant",
            "unknown variant 'maybe' (known: 'off', 'on')",
        ),
        (
            {"type": "boolean", "variants": {"on": "true", "off": False}, "default_variant": "off"},
            "variants.on",
            "a boolean flag's variant value is true or false, not string",
        ),
        (
            {"type": "number", "variants": {"a": "1"}, "default_variant": "a"},
            "variants.a",
            "a number flag's variant value is a finite number, not string",
        ),
        (
            {"type": "number", "variants": {"a": True}, "default_variant": "a"},
            "variants.a",
            "a number flag's variant value is a finite number, not boolean",
        ),
        (
            {"type": "object", "variants": {"a": [1]}, "default_variant": "a"},
            "variants.a",
            "an object flag's variant value is a JSON object, not array",
        ),
        (
            {
                "type": "boolean",
                "rules": [{"when": {"attribute": "a", "op": "exists"}, "variant": "maybe"}],
            },
            "rules[0].variant",
            "unknown variant 'maybe' (known: 'off', 'on')",
        ),
        (
            {
                "type": "boolean",
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 60}, {"variant": "on", "weight": 40}]
                },
            },
            "fallthrough.split[1].variant",
            "variant 'on' is already in this split",
        ),
        (
            {
                "type": "boolean",
                "fallthrough": {
                    "split": [
                        {"variant": "on", "weight": 25.0001},
                        {"variant": "off", "weight": 75},
                    ]
                },
            },
            "fallthrough.split[0].weight",
            "weights are percentages in steps of 0.001, not 25.0001",
        ),
        (
            {
                "type": "boolean",
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 101}, {"variant": "off", "weight": 0}]
                },
            },
            "fallthrough.split[0].weight",
            "Input should be less than or equal to 100",
        ),
        (
            {
                "type": "boolean",
                "fallthrough": {"variant": "on", "split": [{"variant": "on", "weight": 100}]},
            },
            "fallthrough",
            "give either variant or split",
        ),
        (
            {"type": "boolean", "fallthrough": {"variant": "on", "bucket_by": "orgId"}},
            "fallthrough",
            "bucket_by only goes with a split",
        ),
        (
            {"type": "boolean", "rules": [{"when": {"segment": "gamma"}, "variant": "on"}]},
            "rules[0].when.segment",
            "unknown segment 'gamma' (known: 'beta-testers')",
        ),
        (
            {
                "type": "boolean",
                "rules": [
                    {"name": "r", "when": {"attribute": "a", "op": "exists"}, "variant": "on"},
                    {"name": "r", "when": {"attribute": "b", "op": "exists"}, "variant": "on"},
                ],
            },
            "rules[1].name",
            "rule name 'r' is already used by rules[0]",
        ),
        (
            {
                "type": "boolean",
                "rules": [
                    {"when": {"attribute": "v", "op": "semver_gt", "value": "1.x"}, "variant": "on"}
                ],
            },
            "rules[0].when.value",
            "semver_gt needs a semantic version like 1.4.0, not string '1.x'",
        ),
        (
            {
                "type": "boolean",
                "rules": [
                    {
                        "when": {"attribute": "t", "op": "before", "value": "next week"},
                        "variant": "on",
                    }
                ],
            },
            "rules[0].when.value",
            "before needs an ISO 8601 date or date-time like "
            "2026-03-01T12:00:00Z, not string 'next week'",
        ),
        (
            {
                "type": "boolean",
                "rules": [{"when": {"attribute": "c", "op": "in", "value": []}, "variant": "on"}],
            },
            "rules[0].when.value",
            "in needs a non-empty list of strings, numbers or booleans, not array []",
        ),
        (
            {
                "type": "boolean",
                "rules": [{"when": {"attribute": "c", "op": "eq"}, "variant": "on"}],
            },
            "rules[0].when.value",
            "eq needs a value: a string, number or boolean",
        ),
        (
            {
                "type": "boolean",
                "rules": [
                    {"when": {"attribute": "c", "op": "like", "value": "x"}, "variant": "on"}
                ],
            },
            "rules[0].when.op",
            "Input should be 'eq', 'neq', 'in', 'not_in', 'contains', "
            "'starts_with', 'ends_with', 'matches', 'lt', 'lte', 'gt', 'gte', "
            "'semver_eq', 'semver_lt', 'semver_lte', 'semver_gt', 'semver_gte', "
            "'before', 'after' or 'exists'",
        ),
        (
            {
                "type": "boolean",
                "rules": [
                    {
                        "when": {"all": [{"attribute": "a", "op": "exists"}, {"not": "x"}]},
                        "variant": "on",
                    }
                ],
            },
            "rules[0].when.all[1].not",
            "a condition is a mapping: {attribute, op, value}, "
            "{all: [...]}, {any: [...]}, {not: ...} or {segment: name}",
        ),
        ({"type": "boolean", "salt": "a:b"}, "salt", "String should match pattern '^[^:]{0,64}$'"),
        (
            {"type": "boolean", "colour": "red"},
            "colour",
            "unknown key (valid: description, type, variants, default_variant, enabled, salt,"
            " prerequisites, rules, fallthrough)",
        ),
        (
            {"type": "enum", "variants": {"a": 1}, "default_variant": "a"},
            "type",
            "Input should be 'boolean', 'string', 'number' or 'object'",
        ),
    ],
)
def test_each_mistake_is_named_at_its_field(flag: dict[str, Any], where: str, message: str) -> None:
    assert only_problem(doc(f=flag)) == (f"flags.f.{where}", message)


def test_a_flag_file_with_independent_mistakes_reports_them_all_in_one_round(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(
        """\
segments:
  beta: {idz: [u1]}
flags:
  new-checkout:
    type: boolean
    defualt_variant: "off"
    rules:
      - {when: {attribute: "", op: eq}, variant: "on"}
      - {when: {attribute: plan, op: eq, value: pro}, variant: maybe}
    fallthrough: {variant: "on", bucket_by: orgId}
""",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        load_flag_set(path)
    assert [str(p) for p in info.value.problems] == [
        "segments.beta.idz: unknown key; did you mean 'ids'?"
        " (valid: description, attribute, ids, when)",
        "flags.new-checkout.rules[0].when.attribute: String should have at least 1 character",
        "flags.new-checkout.rules[0].when.value: eq needs a value: a string, number or boolean",
        "flags.new-checkout.fallthrough: bucket_by only goes with a split",
        "flags.new-checkout.defualt_variant: unknown key; did you mean 'default_variant'?"
        " (valid: description, type, variants, default_variant, enabled, salt, prerequisites,"
        " rules, fallthrough)",
        "flags.new-checkout.rules[1].variant: unknown variant 'maybe' (known: 'off', 'on')",
    ]


def test_prerequisites_must_name_existing_flags_and_variants() -> None:
    problems = problems_of(
        doc(
            f={
                "type": "boolean",
                "prerequisites": [
                    {"flag": "ghost"},
                    {"flag": "color", "variant": "green"},
                    {"flag": "color"},
                    {"flag": "new-checkout", "variants": ["on", "of"]},
                ],
            }
        )
    )
    assert problems == [
        (
            "flags.f.prerequisites[0].flag",
            "unknown flag 'ghost' (known: 'color', 'f', 'new-checkout')",
        ),
        (
            "flags.f.prerequisites[1].variant",
            "unknown variant of color 'green' (known: 'blue', 'red')",
        ),
        ("flags.f.prerequisites[2]", "'color' is a string flag: name the variant(s) it must serve"),
        (
            "flags.f.prerequisites[3].variants[1]",
            "unknown variant of new-checkout 'of' (known: 'off', 'on')",
        ),
    ]


def test_prerequisite_cycles_are_rejected_once_each() -> None:
    problems = problems_of(
        doc(
            a={"type": "boolean", "prerequisites": [{"flag": "b"}]},
            b={"type": "boolean", "prerequisites": [{"flag": "c"}]},
            c={"type": "boolean", "prerequisites": [{"flag": "a"}]},
            d={"type": "boolean", "prerequisites": [{"flag": "d"}]},
        )
    )
    assert problems == [
        ("flags.a.prerequisites[0].flag", "prerequisite cycle: a -> b -> c -> a"),
        ("flags.d.prerequisites[0].flag", "prerequisite cycle: d -> d"),
    ]


def test_segment_cycles_and_unknown_segments_are_rejected() -> None:
    data = doc()
    data["segments"] = {
        "x": {"when": {"segment": "y"}},
        "y": {"when": {"any": [{"segment": "x"}, {"segment": "zz"}]}},
    }
    data["flags"]["new-checkout"]["rules"] = []
    assert problems_of(data) == [
        ("segments.y.when.any[1].segment", "unknown segment 'zz' (known: 'x', 'y')"),
        ("segments.x.when.segment", "segment cycle: x -> y -> x"),
    ]


def test_a_segment_needs_ids_or_a_rule() -> None:
    data = doc()
    data["segments"]["empty"] = {"description": "nothing"}
    assert only_problem(data) == ("segments.empty", "a segment needs ids, when, or both")


def test_keys_must_be_names() -> None:
    data = doc(**{"bad key": {"type": "boolean"}})
    path, message = only_problem(data)
    assert path == "flags.bad key"
    assert "should match pattern" in message


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert only_problem(["flags"]) == (
        "",
        "a flag set is a mapping with flags and segments, not array",
    )


def test_duplicate_keys_in_the_file_are_each_reported() -> None:
    with pytest.raises(SpecError) as info:
        parse_flag_set(
            """\
flags:
  a: {type: boolean}
  b: {type: boolean, type: string}
  a: {type: boolean}
""",
            source="flags.yaml",
        )
    assert [str(p) for p in info.value.problems] == [
        "flags.b.type: duplicate key 'type' (lines 3 and 3)",
        "flags.a: duplicate key 'a' (lines 2 and 4)",
    ]
    assert str(info.value).startswith("flags.yaml: 2 problems")


def test_a_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigFileError, match="not valid YAML at line 3"):
        parse_flag_set("flags:\n  a: [\n")


# --- the published JSON Schema ----------------------------------------------------------------


def test_the_example_validates_against_the_json_schema() -> None:
    schema = flag_set_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    from sluicegate.flags._load import read_file

    jsonschema.validate(read_file(EXAMPLE), schema, cls=jsonschema.Draft202012Validator)


def test_the_normal_form_validates_against_the_json_schema() -> None:
    jsonschema.validate(
        load_flag_set(EXAMPLE).document(), flag_set_schema(), cls=jsonschema.Draft202012Validator
    )


@pytest.mark.parametrize(
    "flag",
    [
        {"type": "string"},  # no variants
        {"type": "boolean", "extra": 1},
        {"type": "boolean", "rules": [{"when": {"attribute": "a", "op": "near"}, "variant": "on"}]},
        {"type": "boolean", "fallthrough": {"split": [{"variant": "on", "weight": "25"}]}},
    ],
)
def test_the_json_schema_rejects_structural_mistakes(flag: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc(f=flag), flag_set_schema(), cls=jsonschema.Draft202012Validator)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read file") as info:
        load_flag_set(tmp_path / "nope.yaml")
    assert info.value.source == str(tmp_path / "nope.yaml")


def test_a_json_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"f": {"type": "boolean", "default_variant": "on"}}}))
    assert load_flag_set(path).compile().evaluate("f").value is True


def test_a_number_flag_serves_one_json_number_kind_to_every_user() -> None:
    def served(variants: dict[str, object]) -> list[str]:
        rules = [{"when": {"attribute": "k", "op": "eq", "value": v}, "variant": v} for v in "bc"]
        flag = {"type": "number", "variants": variants, "default_variant": "a", "rules": rules}
        flags = validate_flag_set({"flags": {"n": flag}})
        compiled = flags.compile()
        return [json.dumps(compiled.evaluate("n", {"k": k}).value) for k in ("a", "b", "c")]

    assert served({"a": 4, "b": 4.0, "c": 2.5}) == ["4.0", "4.0", "2.5"]  # all floats
    assert served({"a": 4, "b": 8, "c": 16}) == ["4", "8", "16"]  # all integers
