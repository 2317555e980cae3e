"""ContainerCompute against a real Podman API service (``podman system service``).

Each test runs its own revision names, so they share the session's service and images.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluicegate.compute import ContainerCompute, ContainerSpec, HostRef, ReplicaEvent
from sluicegate.compute.base import EventKind, ReplicaState
from sluicegate.errors import NotFoundError, SpecError
from tests._support.podman import APP_IMAGE, PodmanService, build_app_images, podman_service
from tests.compute.conftest import run


def spec_on(podman: PodmanService, **kw: Any) -> ContainerSpec:
    values: dict[str, Any] = {
        "image": f"{APP_IMAGE}:{{revision}}",
        "port": 8080,
        "hosts": (HostRef(podman.url),),
        "env": {"APP_VERSION": "{revision}-r{replica}"},
        "replicas": 2,
        "stop_grace": 2.0,
        "pull": "never",
    }
    values.update(kw)
    return ContainerSpec(**values)


def service_name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def test_start_runs_labelled_replicas_on_published_loopback_ports_then_stop_removes_them(
    podman: PodmanService,
) -> None:
    shop = service_name()
    events: list[ReplicaEvent] = []

    async def scenario() -> None:
        compute = ContainerCompute(on_change=events.append)
        try:
            replicas = await compute.start(shop, "v1", spec_on(podman), deployment="d-1")
            assert [(r.index, r.host) for r in replicas] == [(0, "127.0.0.1"), (1, "127.0.0.1")]
            health = await compute.health(shop, "v1")
            for _ in range(50):
                if all(h.healthy for h in health):
                    break
                health = await compute.health(shop, "v1")
            assert [h.healthy for h in health] == [True, True], health
            for r in replicas:
                answer = httpx.get(f"http://{r.address}/", timeout=5)
                assert answer.headers["x-version"] == f"v1-r{r.index}"
            found = podman.labelled(shop)
            assert [c.labels["sluicegate.replica"] for c in found] in (["0", "1"], ["1", "0"])
            assert {(c.state, c.revision, c.labels["sluicegate.deployment"]) for c in found} == {
                ("running", "v1", "d-1")
            }
            again = await compute.start(shop, "v1", spec_on(podman))  # idempotent
            assert again == replicas and len(podman.labelled(shop)) == 2
            await compute.stop(shop, "v1")
            assert podman.labelled(shop) == []
            with pytest.raises(NotFoundError):
                compute.endpoints(shop, "v1")
            await compute.stop(shop, "v1")  # a revision not running: nothing to do
        finally:
            await compute.aclose()

    run(scenario())
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.STARTED] * 2 + [EventKind.STOPPED] * 2


def test_an_image_that_does_not_exist_with_pull_never_says_so_and_starts_nothing(
    podman: PodmanService,
) -> None:
    shop = service_name()

    async def scenario() -> None:
        compute = ContainerCompute()
        try:
            spec = spec_on(podman, image=f"{APP_IMAGE}:nosuch-{{revision}}")
            with pytest.raises(SpecError) as err:
                await compute.start(shop, "v1", spec)
            message = str(err.value)
            assert f"image {APP_IMAGE}:nosuch-v1 does not exist" in message
            assert podman.url in message and "pull is never" in message
            assert podman.labelled(shop) == []
        finally:
            await compute.aclose()

    run(scenario())


def test_an_unreachable_host_is_named_with_how_it_was_chosen(tmp_path: Any) -> None:
    async def scenario() -> None:
        compute = ContainerCompute()
        spec = ContainerSpec(
            image="localhost/x:1", port=80, hosts=(HostRef(f"unix://{tmp_path}/none.sock"),)
        )
        with pytest.raises(SpecError) as err:
            await compute.start("shop", "v1", spec)
        message = str(err.value)
        assert f"unix://{tmp_path}/none.sock is unreachable" in message
        assert "given in the spec" in message
        await compute.aclose()

    run(scenario())


def test_a_container_that_exits_at_once_is_given_up_with_its_last_log_lines(
    podman: PodmanService,
) -> None:
    shop = service_name()

    async def scenario() -> None:
        compute = ContainerCompute()
        try:
            command = ["/bin/sh", "-c", "echo config file missing: /etc/shop.toml >&2; exit 3"]
            await compute.start(shop, "v1", spec_on(podman, command=command, replicas=1))
            for _ in range(100):
                await compute.check()
                (health,) = await compute.health(shop, "v1")
                if health.state is ReplicaState.FAILED:
                    break
            assert health.state is ReplicaState.FAILED
            assert "exited with status 3" in health.detail
            assert "before it ever answered its health check" in health.detail
            assert "config file missing: /etc/shop.toml" in compute.logs(shop, "v1", 0)
            await compute.stop(shop, "v1")
            assert podman.labelled(shop) == []
        finally:
            await compute.aclose()

    run(scenario())


def test_a_new_server_adopts_running_containers_by_label_without_restarting_them(
    podman: PodmanService,
) -> None:
    shop = service_name()

    async def scenario() -> None:
        first = ContainerCompute()
        spec = spec_on(podman)
        replicas = await first.start(shop, "v1", spec)
        await first.aclose()  # the "server" goes away; the containers keep running
        before = podman.labelled(shop)
        second = ContainerCompute()
        try:
            adoption = await second.adopt(shop, "v1", spec, replicas)
            assert adoption.adopted == [replace(r, started_at=None) for r in replicas]
            assert adoption.gone == []
            assert await second.start(shop, "v1", spec) == adoption.adopted  # no duplicate
            assert podman.labelled(shop) == before  # same containers, still running
            await second.stop(shop, "v1")
            assert podman.labelled(shop) == []
        finally:
            await second.aclose()

    run(scenario())


def test_a_killed_container_is_started_again_and_its_restarts_counted(
    podman: PodmanService,
) -> None:
    shop = service_name()
    events: list[ReplicaEvent] = []

    async def scenario() -> None:
        from sluicegate.compute import RestartPolicy

        policy = RestartPolicy(backoff_initial=0.05, min_uptime=0.0)
        compute = ContainerCompute(on_change=events.append, restart=policy)
        try:
            (replica,) = await compute.start(shop, "v1", spec_on(podman, replicas=1))
            for _ in range(50):
                if (await compute.health(shop, "v1"))[0].healthy:
                    break
            podman.podman("kill", f"sluicegate-{shop}-v1-0")
            health = None
            for _ in range(200):
                await compute.check()
                (health,) = await compute.health(shop, "v1")
                if health.healthy and health.restarts == 1:
                    break
            assert health is not None and (health.healthy, health.restarts) == (True, 1)
            assert health.replica.port == replica.port  # the router's target stays valid
            await compute.stop(shop, "v1")
        finally:
            await compute.aclose()

    run(scenario())
    kinds = [e.kind for e in events]
    assert kinds[:3] == [EventKind.STARTED, EventKind.EXITED, EventKind.RESTARTED], events


def test_replicas_spread_over_two_hosts_in_turn_and_each_host_runs_its_own(
    podman: PodmanService, tmp_path: Path
) -> None:
    shop = service_name()
    with podman_service(tmp_path / "second", name="second") as second:
        build_app_images(second, tmp_path, ("v1",))

        async def scenario() -> None:
            compute = ContainerCompute()
            hosts = (HostRef(podman.url), HostRef(second.url))
            try:
                spec = spec_on(podman, hosts=hosts, replicas=3)
                replicas = await compute.start(shop, "v1", spec)
                assert [r.engine for r in replicas] == [podman.url, second.url, podman.url]
                for _ in range(50):
                    if all(h.healthy for h in await compute.health(shop, "v1")):
                        break
                assert all(h.healthy for h in await compute.health(shop, "v1"))
                on_first = {c.labels["sluicegate.replica"] for c in podman.labelled(shop)}
                on_second = {c.labels["sluicegate.replica"] for c in second.labelled(shop)}
                assert (on_first, on_second) == ({"0", "2"}, {"1"})
                await compute.stop(shop, "v1")
                assert podman.labelled(shop) == [] and second.labelled(shop) == []
            finally:
                await compute.aclose()

        run(scenario())
