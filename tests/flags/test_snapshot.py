from __future__ import annotations

import pytest

from sluicegate.errors import SpecError
from sluicegate.flags import sees_new_version
from sluicegate.flags.snapshot import Rollout, parse_snapshot, snapshot_etag

DOC_OFF = {
    "flags": {
        "f": {"type": "boolean", "variants": {"on": True, "off": False}, "default_variant": "off"}
    }
}
DOC_ON = {
    "flags": {
        "f": {"type": "boolean", "variants": {"on": True, "off": False}, "default_variant": "on"}
    }
}


def test_etag_names_the_version_and_the_rollout_state() -> None:
    assert snapshot_etag(7) == '"7"'
    assert snapshot_etag(7, Rollout("3", 6, 7, 40, {})) == '"7-r3-40"'
    assert snapshot_etag(7, Rollout("3", 6, 7, 12.5, {})) == '"7-r3-12.5"'


def test_a_snapshot_round_trips_through_json() -> None:
    snapshot, serving = parse_snapshot(
        {"env": "prod", "version": 2, "etag": '"2"', "document": DOC_ON, "rollout": None}
    )
    again, _ = parse_snapshot(snapshot.to_json())
    assert again == snapshot
    assert serving.evaluate("f", {"targetingKey": "u"}).value is True


def test_problems_name_their_fields() -> None:
    with pytest.raises(SpecError) as err:
        parse_snapshot(
            {
                "env": "",
                "version": -1,
                "etag": '"1"',
                "document": [],
                "rollout": {
                    "id": "a:b",
                    "percent": 140,
                    "from_version": 0,
                    "to_version": 3,
                    "from_document": DOC_OFF,
                },
            }
        )
    paths = {p.path for p in err.value.problems}
    assert paths == {
        "env",
        "version",
        "document",
        "rollout.id",
        "rollout.percent",
        "rollout.to_version",
    }


def test_a_document_that_does_not_compile_is_rejected_with_its_path() -> None:
    bad = {"flags": {"f": {"type": "boolean", "default_variant": "nope"}}}
    with pytest.raises(SpecError) as err:
        parse_snapshot({"env": "prod", "version": 1, "etag": '"1"', "document": bad})
    assert all(p.path.startswith("document") for p in err.value.problems)
    with pytest.raises(SpecError):
        parse_snapshot(b"{truncated")


def test_a_rollout_serves_the_new_version_exactly_to_users_below_the_percent() -> None:
    _, serving = parse_snapshot(
        {
            "env": "prod",
            "version": 7,
            "etag": '"7-r3-40"',
            "document": DOC_ON,
            "rollout": {
                "id": "r3",
                "from_version": 6,
                "to_version": 7,
                "percent": 40,
                "from_document": DOC_OFF,
            },
        }
    )
    users = [f"u{i}" for i in range(2000)]
    served = [serving.evaluate("f", {"targetingKey": u}).value for u in users]
    assert served == [sees_new_version("r3", u, 40) for u in users]
    assert 0.35 < sum(served) / len(users) < 0.45
    by_alias = serving.evaluate("f", {"userId": users[0]}).value
    assert by_alias == served[0]
    assert serving.evaluate("f", {}).value is False  # no key: stays on version N
    assert serving.evaluate("f", {}).flag_metadata["version"] == 6
    assert serving.evaluate("f", {"targetingKey": 12345}).value is sees_new_version(
        "r3", "12345", 40
    )  # integer keys bucket as their decimal string


@pytest.mark.parametrize(("percent", "expected"), [(0, False), (100, True)])
def test_at_0_and_100_percent_every_context_gets_one_version(percent: int, expected: bool) -> None:
    _, serving = parse_snapshot(
        {
            "env": "prod",
            "version": 7,
            "etag": '"7"',
            "document": DOC_ON,
            "rollout": {
                "id": "r3",
                "from_version": 6,
                "to_version": 7,
                "percent": percent,
                "from_document": DOC_OFF,
            },
        }
    )
    for context in ({}, {"targetingKey": "u1"}, {"userId": "u2"}, None):
        assert serving.evaluate("f", context).value is expected
