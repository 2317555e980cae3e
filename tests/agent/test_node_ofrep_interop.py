"""Interop: the official Node OpenFeature SDK with ``@openfeature/ofrep-provider`` (from the
npm registry, pinned in tests/interop/node/package-lock.json) against a real ``sluice agent``.

Every expectation comes from sluicegate's own evaluator (``compile_snapshot(...).evaluate``)
on the snapshot the agent serves, so a split or rollout is checked user by user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluicegate.flags.snapshot import Snapshot, compile_snapshot
from tests._support.flag_documents import mixed_flag_set
from tests._support.flag_sync import SyncServer, make_snapshot, start_agent
from tests._support.node_ofrep import installed_versions, node_evaluate, require_node_interop

USERS = [f"user-{i:04d}" for i in range(300)]
ALICE = {"targetingKey": "alice", "plan": "pro"}
BOB = {"targetingKey": "bob", "plan": "free"}


def _ev(flag: str, kind: str, default: Any, context: dict[str, Any]) -> dict[str, Any]:
    return {"flag": flag, "type": kind, "default": default, "context": context}


EVERY_TYPE = [
    _ev("new-checkout", "boolean", False, ALICE),  # segment rule
    _ev("new-checkout", "boolean", False, BOB),  # fallthrough split
    _ev("banner", "string", "", ALICE),  # attribute rule
    _ev("banner", "string", "", BOB),
    _ev("max-items", "number", 0, BOB),  # integer
    _ev("ratio", "number", 0, BOB),  # float
    _ev("theme", "object", {}, BOB),
]
ERRORS = [
    _ev("no-such-flag", "boolean", True, ALICE),
    _ev("no-such-flag", "string", "fallback", BOB),
    _ev("banner", "boolean", True, ALICE),  # a string flag asked as boolean
    _ev("new-checkout", "number", 7, ALICE),
    _ev("theme", "string", "plain", BOB),
    _ev("new-checkout", "boolean", True, {"plan": "pro"}),  # a split without a targeting key
]
SPLIT = [_ev("new-checkout", "boolean", False, {"targetingKey": u}) for u in USERS]


def _expected(snapshot: Snapshot, e: dict[str, Any]) -> dict[str, Any]:
    """What sluicegate's evaluator says, in evaluate.mjs's result shape."""
    res = compile_snapshot(snapshot).evaluate(e["flag"], e["context"], e["default"], e["type"])
    return {
        "value": res.value,
        "variant": res.variant,
        "reason": str(res.reason),
        "errorCode": None if res.error_code is None else str(res.error_code),
        "flagMetadata": dict(res.flag_metadata) if res.error_code is None else {},
    }


@pytest.fixture
def node() -> str:
    """``node`` with the pinned packages installed; requested before ``sync_server`` so a
    skip costs no server start."""
    return require_node_interop()


def _run(
    node: str,
    sync_server: SyncServer,
    tmp_path: Path,
    snapshot: Snapshot,
    evaluations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    sync_server.publish(snapshot)
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(
            lambda: agent.get("/healthz").json().get("etag") == snapshot.etag,
            what=f"snapshot {snapshot.etag}",
        )
        out = node_evaluate(node, agent.url, evaluations)
    pinned = installed_versions()
    assert {k: v for k, v in out["versions"].items() if k in pinned} == pinned, (
        "node_modules differs from package-lock.json; run npm ci in tests/interop/node"
    )
    print(f"node {out['versions']['node']}, provider {out['provider']!r}: {pinned}")
    results: list[dict[str, Any]] = out["results"]
    assert len(results) == len(evaluations)
    return results


def test_the_node_ofrep_provider_evaluates_every_type_as_our_evaluator_does(
    node: str, sync_server: SyncServer, tmp_path: Path
) -> None:
    snapshot = make_snapshot(1, mixed_flag_set(25))
    results = _run(node, sync_server, tmp_path, snapshot, EVERY_TYPE)
    assert results == [_expected(snapshot, e) for e in EVERY_TYPE]
    # The evaluator's answers, spelled out, so the comparison above cannot be vacuous.
    alice_checkout, _, alice_banner, bob_banner, items, ratio, theme = results
    assert (alice_checkout["value"], alice_checkout["variant"], alice_checkout["reason"]) == (
        True,
        "on",
        "TARGETING_MATCH",
    )
    assert alice_checkout["flagMetadata"] == {"rule": 0, "version": 1}
    assert (alice_banner["value"], bob_banner["value"]) == ("Welcome back, pro", "Go pro")
    assert (items["value"], ratio["value"]) == (3, 0.5)
    assert theme["value"] == {"bg": "#000", "fg": "#fff"}


def test_the_node_ofrep_provider_reports_not_found_type_mismatch_and_missing_key(
    node: str, sync_server: SyncServer, tmp_path: Path
) -> None:
    snapshot = make_snapshot(1, mixed_flag_set(25))
    results = _run(node, sync_server, tmp_path, snapshot, ERRORS)
    assert results == [_expected(snapshot, e) for e in ERRORS]
    assert [(r["value"], r["reason"], r["errorCode"]) for r in results] == [
        (True, "ERROR", "FLAG_NOT_FOUND"),
        ("fallback", "ERROR", "FLAG_NOT_FOUND"),
        (True, "ERROR", "TYPE_MISMATCH"),
        (7, "ERROR", "TYPE_MISMATCH"),
        ("plain", "ERROR", "TYPE_MISMATCH"),
        (True, "ERROR", "TARGETING_KEY_MISSING"),
    ]


@pytest.mark.parametrize("rollout_percent", [None, 40])
def test_node_users_land_in_the_split_by_their_bucket(
    node: str, sync_server: SyncServer, tmp_path: Path, rollout_percent: int | None
) -> None:
    """A 25 % split; with a flag-set rollout at 40 %, the users it has reached are served
    version 2 (a 60 % split) and the others version 1 — user by user as the evaluator says."""
    if rollout_percent is None:
        snapshot = make_snapshot(1, mixed_flag_set(25))
    else:
        snapshot = make_snapshot(
            2,
            mixed_flag_set(60),
            rollout={"id": "r9", "percent": rollout_percent, "from_document": mixed_flag_set(25)},
        )
    results = _run(node, sync_server, tmp_path, snapshot, SPLIT)
    assert results == [_expected(snapshot, e) for e in SPLIT]
    assert {r["reason"] for r in results} == {"SPLIT"}
    assert {r["value"] for r in results} == {True, False}
    versions = {r["flagMetadata"]["version"] for r in results}
    assert versions == ({1} if rollout_percent is None else {1, 2})
