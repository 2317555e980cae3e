"""``GET /ofrep/v1/configuration``: the OFREP provider configuration, true to what the agent
does (polling with ETags, every flag type, no provider-side cache)."""

from __future__ import annotations

from pathlib import Path

from tests._support import free_port
from tests._support.flag_documents import mixed_flag_set
from tests._support.flag_sync import SyncServer, make_snapshot, start_agent

EXPECTED = {
    "name": "sluicegate",
    "capabilities": {
        "cacheInvalidation": {"polling": {"enabled": True, "minPollingIntervalMs": 1000}},
        "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
        "caching": {"enabled": False},
    },
}


def test_the_configuration_names_polling_every_type_and_no_cache_with_an_etag(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(1, mixed_flag_set(25)))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
        config = agent.get("/ofrep/v1/configuration")
        assert config.status_code == 200
        assert config.headers["content-type"] == "application/json"
        assert config.json() == EXPECTED
        etag = config.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = agent.get("/ofrep/v1/configuration", headers={"If-None-Match": f'"x", {etag}'})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert (
            agent.get("/ofrep/v1/configuration", headers={"If-None-Match": '"other"'}).status_code
            == 200
        )
        assert agent.post("/ofrep/v1/configuration", {}).status_code == 405

        # What it promises is what the agent does: each listed type is served as such...
        served = {
            key: agent.ofrep(key, {"targetingKey": "bob"}).json()["value"]
            for key in ("new-checkout", "banner", "max-items", "ratio", "theme")
        }
        assert [type(v) for v in served.values()] == [bool, str, int, float, dict]
        # ...and polling the bulk endpoint with its ETag costs a 304 until something changes.
        bulk = agent.post("/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "bob"}})
        poll = agent.post(
            "/ofrep/v1/evaluate/flags",
            {"context": {"targetingKey": "bob"}},
            headers={"If-None-Match": bulk.headers["etag"]},
        )
        assert poll.status_code == 304
        sync_server.publish(make_snapshot(2, mixed_flag_set(26)))
        agent.wait_for(lambda: agent.get("/healthz").json()["version"] == 2, what="version 2")
        changed = agent.post(
            "/ofrep/v1/evaluate/flags",
            {"context": {"targetingKey": "bob"}},
            headers={"If-None-Match": bulk.headers["etag"]},
        )
        assert changed.status_code == 200 and changed.headers["etag"] != bulk.headers["etag"]


def test_the_configuration_is_served_before_the_agent_holds_a_flag_set(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with start_agent(
        nowhere, "sgt_000000000000_nobodylistensherenobody", tmp_path / "cache"
    ) as agent:
        assert agent.get("/healthz").status_code == 503
        config = agent.get("/ofrep/v1/configuration")
        assert config.status_code == 200 and config.json() == EXPECTED
