"""``sluice agent`` against a real uvicorn server hosting the sync routes."""

from __future__ import annotations

import time
from pathlib import Path

from sluicegate.flags import sees_new_version
from tests._support.flag_sync import (
    SyncServer,
    bool_flag_set,
    make_snapshot,
    start_agent,
)


def _ready(agent) -> bool:  # type: ignore[no-untyped-def]
    return bool(agent.get("/healthz").status_code == 200)


def test_agent_serves_a_flag_over_ofrep_and_plain_get(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(1, bool_flag_set(on_ids=("alice",))))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
        hit = agent.ofrep("new-checkout", {"targetingKey": "alice"})
        assert hit.status_code == 200
        assert hit.json() == {
            "key": "new-checkout",
            "value": True,
            "variant": "on",
            "reason": "TARGETING_MATCH",
            "metadata": {"rule": 0, "version": 1},
        }
        miss = agent.ofrep("new-checkout", {"targetingKey": "bob"}).json()
        assert (miss["value"], miss["variant"], miss["reason"]) == (False, "off", "DEFAULT")
        curl = agent.get("/v1/flags/new-checkout", params={"userId": "alice", "plan": "pro"})
        assert curl.json()["value"] is True

        unknown = agent.ofrep("no-such-flag", {"targetingKey": "alice"})
        assert unknown.status_code == 404
        assert unknown.json()["errorCode"] == "FLAG_NOT_FOUND"
        bad = agent.post(
            "/ofrep/v1/evaluate/flags/new-checkout",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["errorCode"] == "PARSE_ERROR"
        bad_ctx = agent.post("/ofrep/v1/evaluate/flags/new-checkout", {"context": [1]})
        assert bad_ctx.status_code == 400 and bad_ctx.json()["errorCode"] == "INVALID_CONTEXT"

        bulk = agent.post("/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "alice"}})
        assert bulk.status_code == 200
        assert [f["value"] for f in bulk.json()["flags"]] == [True]
        again = agent.post(
            "/ofrep/v1/evaluate/flags",
            {"context": {"targetingKey": "alice"}},
            headers={"If-None-Match": bulk.headers["etag"]},
        )
        assert again.status_code == 304
        other = agent.post(
            "/ofrep/v1/evaluate/flags",
            {"context": {"targetingKey": "bob"}},
            headers={"If-None-Match": bulk.headers["etag"]},
        )
        assert other.status_code == 200 and other.json()["flags"][0]["value"] is False

        snap = agent.get("/v1/snapshot")
        assert snap.headers["etag"] == '"1"' and snap.json()["version"] == 1
        assert agent.get("/v1/snapshot", headers={"If-None-Match": '"1"'}).status_code == 304
        metrics = agent.get("/metrics").text
        assert "sluicegate_agent_flag_set_version 1" in metrics
        assert 'sluicegate_agent_evaluations_total{flag="new-checkout",variant="on"}' in metrics


def test_a_published_update_reaches_the_agent_over_the_stream(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(1, bool_flag_set()))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
        assert agent.value("new-checkout", "bob") is False
        sent = sync_server.publish(make_snapshot(2, bool_flag_set(on_ids=("bob",))))
        agent.wait_for(lambda: agent.value("new-checkout", "bob") is True, what="version 2")
        print(
            f"publish -> agent serves v2: {(time.monotonic() - sent) * 1000:.1f} ms "
            "(incl. the publish request and polling)"
        )
        assert agent.get("/healthz").json()["version"] == 2
        cache = tmp_path / "cache" / "prod.snapshot.json"  # written just after the swap
        agent.wait_for(lambda: '"version":2' in cache.read_text(), what="version 2 cached")


def test_agent_keeps_serving_when_the_server_dies_and_reports_staleness(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(3, bool_flag_set(on_ids=("alice",))))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
        assert agent.get("/healthz").json()["stale"] is False
        sync_server.kill()
        agent.wait_for(lambda: agent.get("/healthz").json()["stale"] is True, what="stale")
        health = agent.get("/healthz")
        assert health.status_code == 200
        assert health.json()["version"] == 3 and health.json()["connected"] is False
        assert agent.value("new-checkout", "alice") is True
        assert agent.value("new-checkout", "bob") is False
        assert "sluicegate_agent_stale 1" in agent.get("/metrics").text


def test_agent_restarted_with_the_server_down_serves_from_its_cache(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(4, bool_flag_set(on_ids=("alice",))))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
    sync_server.kill()
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        health = agent.get("/healthz")  # ready at once: the cache is loaded before listening
        assert health.status_code == 200
        body = health.json()
        assert (body["version"], body["source"], body["stale"]) == (4, "cache", True)
        assert agent.value("new-checkout", "alice") is True


def test_a_corrupt_cache_is_ignored_with_a_log_line_and_replaced_by_a_fresh_sync(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "prod.snapshot.json").write_text(
        '{"env": "prod", "version": 9, "etag": "\\"9\\"", '
        '"document": {"flags": {"x": {"type": "nonsense"'
    )
    sync_server.publish(make_snapshot(5, bool_flag_set(on_ids=("alice",))))
    with start_agent(sync_server.url, sync_server.token, cache) as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
        assert agent.get("/healthz").json()["version"] == 5
        assert "ignoring the invalid flag cache" in agent.logs()
        agent.wait_for(
            lambda: '"version":5' in (cache / "prod.snapshot.json").read_text(),
            what="cache rewritten",
        )


def test_a_rollout_serves_the_new_version_to_the_users_its_percent_has_reached(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    old, new = bool_flag_set(), bool_flag_set(default="on")
    users = [f"user-{i:03d}" for i in range(200)]
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        for percent in (10, 40, 100):
            snapshot = make_snapshot(
                7, new, rollout={"id": "r3", "percent": percent, "from_document": old}
            )
            sync_server.publish(snapshot)
            agent.wait_for(
                lambda s=snapshot: agent.get("/healthz").json()["etag"] == s.etag,
                what=f"rollout at {percent}",
            )
            served = [agent.value("new-checkout", u) for u in users]
            expected = [sees_new_version("r3", u, percent) for u in users]
            assert served == expected
        assert sum(served) == 200


def test_an_agent_with_a_wrong_key_is_not_ready_and_says_why(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(1, bool_flag_set()))
    with start_agent(
        sync_server.url, "sgt_000000000000_wrongwrongwrongwrongwrong", tmp_path / "cache"
    ) as agent:
        agent.wait_for(
            lambda: agent.get("/healthz").json()["last_error"] is not None, what="an error"
        )
        health = agent.get("/healthz")
        assert health.status_code == 503
        assert "401" in health.json()["last_error"]


def test_an_agent_key_reads_only_its_own_environment(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    import httpx

    sync_server.publish(make_snapshot(1, bool_flag_set(on_ids=("alice",))))
    sync_server.publish(make_snapshot(1, bool_flag_set(), env="staging"))
    prod_key = sync_server.agent_keys["prod"]

    def get(path: str) -> httpx.Response:
        return httpx.get(sync_server.url + path, headers={"Authorization": f"Bearer {prod_key}"})

    assert get("/v1/flags/prod/snapshot").status_code == 200
    staging = get("/v1/flags/staging/snapshot")
    assert staging.status_code == 403 and "'prod'" in staging.json()["detail"]
    assert get("/test/reader-only").status_code == 403  # not a reader elsewhere
    with start_agent(sync_server.url, prod_key, tmp_path / "cache") as agent:
        agent.wait_for(lambda: _ready(agent), what="ready")
        assert agent.value("new-checkout", "alice") is True
    with start_agent(sync_server.url, prod_key, tmp_path / "cache-s", env="staging") as agent:
        agent.wait_for(
            lambda: agent.get("/healthz").json()["last_error"] is not None, what="an error"
        )
        assert "403" in agent.get("/healthz").json()["last_error"]
