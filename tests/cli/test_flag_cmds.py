"""`sluice flags` argument parsing and output that needs no server."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sluicegate.cli._flag_cmds import _context, _rollout, _steps, flags
from sluicegate.cli._flag_views import compact, diff_lines
from sluicegate.flags import flag_set_schema, load_flag_set, validate_flag_set
from tests._support import REPO_ROOT


def test_get_prints_a_compact_form_that_applies_to_the_same_normal_form() -> None:
    stored = load_flag_set(REPO_ROOT / "examples" / "flags.yaml").document()
    short = compact(stored)
    assert validate_flag_set(short).document() == stored
    assert "enabled" not in short["flags"]["new-checkout"]
    assert "variants" not in short["flags"]["new-checkout"]  # boolean defaults
    assert short["flags"]["checkout-button"]["salt"] == "button-2026-11"


def test_steps_are_percent_and_pause_pairs() -> None:
    assert _steps(("10:30s,50:2m", "80")) == [
        {"weight": 10, "pause": "30s"},
        {"weight": 50, "pause": "2m"},
        {"weight": 80},
    ]
    with pytest.raises(click.BadParameter, match="not PERCENT or PERCENT:PAUSE"):
        _steps(("ten:30s",))


def test_rollout_options_build_the_rollout_or_none() -> None:
    assert _rollout(None, (), None, ()) is None
    assert _rollout(None, (), None, ("shop/5xx",)) == {"alarms": ["shop/5xx"]}
    assert _rollout("AllAtOnce", (), "0", ()) == {
        "alarms": [],
        "strategy": "AllAtOnce",
        "bake_time": "0",
    }
    with pytest.raises(click.UsageError, match="not both"):
        _rollout("AllAtOnce", ("10:1m",), None, ())


def test_context_values_are_strings_unless_typed_as_json() -> None:
    assert _context(("userId=u1", "age:=42", "beta:=true", 'tags:=["a"]', "eq=a=b")) == {
        "userId": "u1",
        "age": 42,
        "beta": True,
        "tags": ["a"],
        "eq": "a=b",
    }
    for bad in ("novalue", "=x", "n:=nope"):
        with pytest.raises(click.BadParameter):
            _context((bad,))


def test_diff_lines_mark_added_removed_and_changed_entries() -> None:
    changes = [
        {"kind": "flag", "key": "a", "change": "added", "fields": []},
        {
            "kind": "segment",
            "key": "beta",
            "change": "changed",
            "fields": [
                {
                    "path": "ids",
                    "change": "ids",
                    "added": ["u1", "u2"],
                    "removed": ["u9"],
                    "added_count": 2,
                    "removed_count": 1,
                }
            ],
        },
        {
            "kind": "flag",
            "key": "b",
            "change": "changed",
            "fields": [{"path": "enabled", "change": "changed", "old": True, "new": False}],
        },
    ]
    assert [str(t) for t in diff_lines(changes)] == [
        "+ flag a",
        "~ segment beta",
        "    ids: +2 -1 ids (+u1, +u2, -u9)",
        "~ flag b",
        "    enabled: True → False",
    ]
    assert [str(t) for t in diff_lines([])] == ["no changes"]


def test_schema_prints_the_json_schema_without_a_server() -> None:
    import json

    result = CliRunner().invoke(flags, ["schema"])
    assert result.exit_code == 0 and json.loads(result.output) == flag_set_schema()


def test_apply_validates_locally_before_calling_the_server(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags: {x: {type: boolean, default_variant: maybe}}\n")
    result = CliRunner().invoke(
        flags, ["apply", "-f", str(bad), "--env", "prod", "--url", "http://127.0.0.1:1"]
    )
    assert "flags.x.default_variant" in str(result.exception)
