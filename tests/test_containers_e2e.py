"""Container revisions end to end: `sluice server`, its router and a real Podman API service.

One story per test: a canary of v2 over v1 under load that survives a server SIGKILL (no
failed request, adopted by label, blue's containers removed, no orphan); and the mistakes a
user makes with containers, each FAILED at once with its cause while blue keeps serving.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import free_port
from tests._support.podman import APP_IMAGE, PodmanService
from tests._support.rawhttp import get_many
from tests._support.server import Server, running_server
from tests.test_mistakes_e2e import Api
from tests.test_server_e2e import Load

pytestmark = pytest.mark.slow


def spec(name: str, listen: int, **container: Any) -> dict[str, Any]:
    return {
        "service": name,
        "listener": {"port": listen},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "container": {
                "image": f"{APP_IMAGE}:{{revision}}",
                "port": 8080,
                "env": {"APP_VERSION": "{revision}"},
                "replicas": 2,
                "stop_grace": "2s",
                "pull": "never",
                **container,
            }
        },
        "deployment": {
            "config": {"steps": [{"weight": 50, "pause": "3s"}, {"weight": 100}]},
            "termination_wait": "1s",
            "health_timeout": "4s",
        },
    }


@pytest.fixture
def server(tmp_path: Path, podman: PodmanService) -> Iterator[Server]:
    with running_server(tmp_path / "state", ["--container-host", podman.url]) as s:
        try:
            yield s
        finally:
            with contextlib.suppress(AssertionError):
                ids = podman.podman("ps", "-aq", "--filter", "label=sluicegate.service").split()
                if ids:
                    podman.podman("rm", "-f", "-t", "0", *ids)


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    with Api(server) as client:  # it reconnects by itself after a server restart
        yield client


def containers(podman: PodmanService, service: str) -> Counter[str]:
    """Running containers of ``service`` by revision (stopped ones count as ``stopped``)."""
    return Counter(c.revision if c.state == "running" else c.state
                   for c in podman.labelled(service))  # fmt: skip


def test_a_canary_of_containers_shifts_under_load_survives_a_server_sigkill_and_leaves_no_orphan(
    server: Server, api: Api, podman: PodmanService, tmp_path: Path
) -> None:
    port = free_port()
    assert api.apply(spec("shop", port)).status_code == 200
    api.until(api.deploy("shop", "v1"), {"succeeded"}, timeout=60)
    assert Counter(r.version for r in get_many(port, 20)) == {"v1": 20}
    assert containers(podman, "shop") == {"v1": 2}

    load = Load(port)
    load.thread.start()
    dep = api.deploy("shop", "v2")
    api.until(dep, {"shifting"}, timeout=60)
    green = {c.id for c in podman.labelled("shop") if c.revision == "v2"}
    server.kill()  # mid-shift: the router and the containers keep serving
    time.sleep(1.0)
    server.start()
    final = api.until(dep, {"succeeded", "rolled_back", "failed"}, timeout=60)
    time.sleep(2.0)  # termination_wait, then blue is stopped
    load.stop.set()
    load.thread.join(10)
    assert final["phase"] == "succeeded", final["events"]
    assert Counter(r.version for r in get_many(port, 20)) == {"v2": 20}
    assert set(load.seen) <= {"v1", "v2"}, load.seen  # not one failed request
    assert load.seen["v1"] > 0 and load.seen["v2"] > 0
    assert containers(podman, "shop") == {"v2": 2}  # blue removed, no duplicate, no orphan
    assert {c.id for c in podman.labelled("shop")} == green  # adopted, not restarted

    logs = server.cli("logs", "shop", "-r", "v2")  # the containers' output, through the API
    assert "==> replica 0 <==" in logs and "response:200" in logs
    replicas = api.ok("GET", "/services/shop")["replicas"]
    assert {(r["revision"], r["container"], r["host"], r["state"], r["healthy"], r["restarts"])
            for r in replicas} == {("v2", cid, podman.url, "running", True, 0)
                                   for cid in green}  # fmt: skip
    assert all(r["image"].startswith("sha256:") for r in replicas)
    status = server.cli("status", "shop")
    assert all(f"container {cid[:12]}, image sha256:" in status for cid in green), status
    assert f"host {podman.url}" in status and "running, healthy, 0 restarts" in status

    podman.podman("kill", "sluicegate-shop-v2-0")  # a crash: the server starts it again
    deadline = time.monotonic() + 20
    while True:
        replica = api.ok("GET", "/services/shop")["replicas"][0]
        if replica["restarts"] == 1 and replica["healthy"]:
            break
        assert time.monotonic() < deadline, replica
        time.sleep(0.2)
    assert replica["container"] in green  # the same container, started again
    restarted = [e for e in api.events("shop") if e["kind"] == "replica.restarted"]
    assert len(restarted) == 1 and "v2 replica 0" in restarted[0]["message"]


def test_container_mistakes_fail_at_once_with_their_cause_and_blue_keeps_serving(
    server: Server, api: Api, podman: PodmanService, tmp_path: Path
) -> None:
    port = free_port()
    assert api.apply(spec("shop", port, replicas=1)).status_code == 200
    api.until(api.deploy("shop", "v1"), {"succeeded"}, timeout=60)
    blue = podman.labelled("shop")

    def failed(revision: str, data: dict[str, Any], timeout: float = 20) -> str:
        assert api.apply(data).status_code == 200
        dep = api.until(api.deploy("shop", revision), {"failed"}, timeout=timeout)
        story = [f"{e['message']} {' '.join((e.get('data') or {}).get('logs', []))}"
                 for e in dep["events"]]  # fmt: skip
        assert {r.version for r in get_many(port, 10)} == {"v1"}  # blue untouched
        assert podman.labelled("shop") == blue  # green removed, blue the same
        return f"{dep['reason']}\n" + "\n".join(story)

    story = failed("nosuch", spec("shop", port, replicas=1))
    assert f"image {APP_IMAGE}:nosuch does not exist" in story and "pull is never" in story

    story = failed("v2", spec("shop", port, replicas=1, hosts=[f"unix://{tmp_path}/no.sock"]))
    assert f"the container engine at unix://{tmp_path}/no.sock is unreachable" in story

    story = failed("v2", spec("shop", port, replicas=1, port=9999))
    assert "health" in story.lower()

    crash = ["/bin/sh", "-c", "echo no config at /etc/shop.toml; exit 3"]
    story = failed("v2", spec("shop", port, replicas=1, command=crash))
    assert "exited with status 3" in story and "no config at /etc/shop.toml" in story


def test_scaling_the_serving_revision_out_and_in_under_load_fails_no_request(
    server: Server, api: Api, podman: PodmanService
) -> None:
    port = free_port()
    assert api.apply(spec("shop", port)).status_code == 200
    api.until(api.deploy("shop", "v1"), {"succeeded"}, timeout=60)
    load = Load(port)
    load.thread.start()
    try:
        assert "shop v1: 2 → 3 replicas" in server.cli("scale", "shop", "--replicas", "3")
        assert containers(podman, "shop") == {"v1": 3}
        assert [r["healthy"] for r in api.ok("GET", "/services/shop")["replicas"]] == [True] * 3
        assert "shop v1: 3 → 1 replicas" in server.cli("scale", "shop", "-n", "1")
        assert containers(podman, "shop") == {"v1": 1}
        time.sleep(0.5)
    finally:
        load.stop.set()
        load.thread.join(10)
    assert set(load.seen) == {"v1"}, load.seen  # not one failed request
    stored = api.ok("GET", "/services/shop")["spec"]["compute"]["container"]["replicas"]
    assert stored == 1  # the next deployment starts as many

    refused = api.call("POST", "/services/shop/scale", {"replicas": 0})
    assert refused.status_code == 422 and "replicas" in refused.text
    assert api.call("POST", "/services/nope/scale", {"replicas": 2}).status_code == 404
    dep = api.deploy("shop", "v2")
    busy = api.call("POST", "/services/shop/scale", {"replicas": 2})
    assert busy.status_code == 409 and "active deployment" in busy.text
    api.ok("POST", "/services/shop/rollback")
    api.until(dep, {"rolled_back"}, timeout=60)
    assert containers(podman, "shop") == {"v1": 1}


def test_a_container_release_failing_30_percent_is_rolled_back_by_the_default_guards(
    server: Server, api: Api, podman: PodmanService
) -> None:
    port = free_port()
    assert api.apply(spec("shop", port)).status_code == 200
    api.until(api.deploy("shop", "v1"), {"succeeded"}, timeout=60)
    load = Load(port)
    load.thread.start()
    try:
        dep = api.deploy("shop", "v2", env={"FAIL_PERCENT": "30"})
        final = api.until(dep, {"rolled_back", "succeeded", "failed"}, timeout=60)
    finally:
        load.stop.set()
        load.thread.join(10)
    assert final["phase"] == "rolled_back", final["events"]
    assert load.seen["500"] > 0 and load.seen["v1"] > 0  # it was bad, and blue served on
    assert {r.version for r in get_many(port, 20)} == {"v1"}
    assert containers(podman, "shop") == {"v1": 2}  # green's containers removed
