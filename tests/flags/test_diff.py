"""Diffs between flag-set versions: per flag and segment, the fields that changed."""

from __future__ import annotations

import copy
from pathlib import Path

from sluicegate.flags import (
    EntryChange,
    FieldChange,
    IdsChange,
    diff_flag_sets,
    load_flag_set,
    validate_flag_set,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"
OLD = load_flag_set(EXAMPLE).document()


def test_identical_versions_have_no_changes() -> None:
    diff = diff_flag_sets(OLD, copy.deepcopy(OLD))
    assert not diff and diff.changes == () and str(diff) == "no changes"


def test_a_default_written_out_is_no_change() -> None:
    raw = {"flags": {"f": {"type": "boolean"}}}
    explicit = {
        "flags": {
            "f": {
                "type": "boolean",
                "variants": {"on": True, "off": False},
                "default_variant": "off",
                "enabled": True,
            }
        }
    }
    assert not diff_flag_sets(
        validate_flag_set(raw).document(), validate_flag_set(explicit).document()
    )


def test_changed_fields_added_and_removed_flags() -> None:
    new = copy.deepcopy(OLD)
    new["flags"]["new-checkout"]["fallthrough"]["split"][0]["weight"] = 50.0
    new["flags"]["new-checkout"]["fallthrough"]["split"][1]["weight"] = 50.0
    new["flags"]["legacy-coupons"]["enabled"] = True
    new["flags"]["checkout-limits"]["variants"]["business"]["max_items"] = 1000
    new["flags"]["checkout-button"]["rules"].append(
        {"when": {"attribute": "a", "op": "exists"}, "variant": "blue"}
    )
    del new["flags"]["free-shipping-threshold"]
    new["flags"]["dark-mode"] = {"type": "boolean"}
    diff = diff_flag_sets(OLD, new)
    assert diff.changes == (
        EntryChange(
            "flag",
            "new-checkout",
            "changed",
            (
                FieldChange("fallthrough.split[0].weight", "changed", 25.0, 50.0),
                FieldChange("fallthrough.split[1].weight", "changed", 75.0, 50.0),
            ),
        ),
        EntryChange(
            "flag",
            "checkout-button",
            "changed",
            (
                FieldChange(
                    "rules",
                    "changed",
                    OLD["flags"]["checkout-button"]["rules"],
                    new["flags"]["checkout-button"]["rules"],
                ),
            ),
        ),
        EntryChange("flag", "free-shipping-threshold", "removed"),
        EntryChange(
            "flag",
            "checkout-limits",
            "changed",
            (FieldChange("variants.business.max_items", "changed", 500, 1000),),
        ),
        EntryChange(
            "flag", "legacy-coupons", "changed", (FieldChange("enabled", "changed", False, True),)
        ),
        EntryChange("flag", "dark-mode", "added"),
    )
    assert "flag legacy-coupons: changed\n  enabled: False -> True" in str(diff)


def test_a_fields_type_change_is_a_change_even_when_python_calls_them_equal() -> None:
    old = {"flags": {"n": {"variants": {"a": 1}}}}
    new = {"flags": {"n": {"variants": {"a": True}}}}
    assert diff_flag_sets(old, new).changes[0].fields == (
        FieldChange("variants.a", "changed", 1, True),
    )


def test_a_segments_ids_change_is_given_as_who_joined_and_who_left() -> None:
    old = {"segments": {"big": {"ids": [f"u{i}" for i in range(100_000)]}}}
    new = {
        "segments": {"big": {"ids": [f"u{i}" for i in range(3, 100_002)], "description": "bigger"}}
    }
    (change,) = diff_flag_sets(old, new).changes
    assert change.fields == (
        IdsChange("ids", ("u100000", "u100001"), ("u0", "u1", "u2")),
        FieldChange("description", "added", None, "bigger"),
    )
    assert str(change.fields[0]) == "ids: +2 -3 ids"


def test_added_and_removed_fields_and_the_sets_description() -> None:
    new = copy.deepcopy(OLD)
    new["description"] = "shop, prod"
    del new["flags"]["checkout-button"]["prerequisites"]
    new["flags"]["new-checkout"]["description"] = "x"
    diff = diff_flag_sets(OLD, new)
    assert diff.description == FieldChange(
        "description", "changed", "shop, production", "shop, prod"
    )
    assert diff.as_dict()[1] == {
        "kind": "flag",
        "key": "checkout-button",
        "change": "changed",
        "fields": [
            {
                "path": "prerequisites",
                "change": "removed",
                "old": [{"flag": "new-checkout"}],
                "new": None,
            }
        ],
    }
