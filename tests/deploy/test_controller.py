"""The controller end to end in one process: real store, real replicas, real router."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sluicegate.clock import SystemClock
from sluicegate.compute import ComputeSelector, ContainerCompute, ExternalCompute
from sluicegate.compute.local import LocalCompute
from sluicegate.deploy import Command, Phase
from sluicegate.deploy.controller import Controller
from sluicegate.errors import ConflictError
from sluicegate.router.supervisor import RouterSupervisor
from sluicegate.router.traffic import RouterTraffic
from sluicegate.spec.service import ServiceSpec
from sluicegate.store import Store
from tests._support import APP_PATH, free_port
from tests._support.leakguard import processes_killed_at_exit
from tests._support.podman import APP_IMAGE, PodmanService
from tests._support.rawhttp import get_many


def shop(port: int, test_port: int, *, on: str | None = None, **deployment: Any) -> ServiceSpec:
    """The sample service; ``on``: a container engine's URL to run it there instead (the
    test image answers its revision like the sample app, tests/_support/podman.py)."""
    spec = ServiceSpec.model_validate(
        {
            "service": "shop",
            "listener": {"port": port, "test_port": test_port},
            "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
            "stickiness": {"enabled": True, "duration": "1h"},
            "compute": {
                "local": {
                    "command": [
                        sys.executable,
                        str(APP_PATH),
                        "--port",
                        "{port}",
                        "--version",
                        "{revision}",
                    ],
                    "replicas": 2,
                    "stop_grace": "2s",
                }
            },
            "deployment": {"termination_wait": "1s", "health_timeout": "20s", **deployment},
        }
    )
    if on is None:
        return spec
    data = spec.model_dump(mode="json")
    data["compute"] = {"container": {
        "image": f"{APP_IMAGE}:{{revision}}", "port": 8080, "env": {"APP_VERSION": "{revision}"},
        "replicas": 2, "stop_grace": "2s", "pull": "never", "hosts": [on],
    }}  # fmt: skip
    return ServiceSpec.model_validate(data)


class Env:
    def __init__(
        self, tmp: Path, database: str | None = None, podman: PodmanService | None = None
    ) -> None:
        self.tmp = tmp
        self.port, self.test_port = free_port(), free_port()
        self.router = RouterSupervisor(tmp / "state")
        self.store = Store.open(database or tmp / "state" / "sluicegate.db")
        self.compute = LocalCompute(tmp / "state", poll_interval=0.1)
        self.containers = ContainerCompute()
        self.computes = ComputeSelector(
            local=self.compute, external=ExternalCompute(), container=self.containers
        )
        self.controller: Controller | None = None
        self.podman = podman  # set: the service runs as containers there
        self.on = podman.url if podman is not None else None
        if podman is not None:  # the session builds v1 and v2; these tests deploy v3 too
            podman.podman("tag", f"{APP_IMAGE}:v1", f"{APP_IMAGE}:v3")

    def spec(self, **deployment: Any) -> ServiceSpec:
        """The sample service on this env's listeners and compute (local or containers)."""
        return shop(self.port, self.test_port, on=self.on, **deployment)

    def failing(self, percent: int) -> dict[str, str]:
        """Deployment env making a revision fail ``percent`` % of its requests (a bad release)."""
        return {("SHOP_FAIL_PERCENT" if self.podman is None else "FAIL_PERCENT"): str(percent)}

    def remains(self, revision: str) -> list[str]:
        """What is left of ``revision``: its endpoints, and for containers every container
        with its label (running or not), as ``podman ps -a`` sees it."""
        assert self.controller is not None
        left = list(self.controller.world.running("shop", revision))
        if self.podman is not None:
            left += [c.id for c in self.podman.labelled("shop") if c.revision == revision]
        return left

    async def crash(self) -> Controller:
        """The control plane vanishes and starts again: new compute and controller over the
        same store; replicas, containers and the router keep running. Call ``recover`` next."""
        await self.compute.aclose()
        await self.containers.aclose()
        self.compute = LocalCompute(self.tmp / "state", poll_interval=0.1)
        self.containers = ContainerCompute()
        self.computes = ComputeSelector(
            local=self.compute, external=ExternalCompute(), container=self.containers
        )
        traffic = RouterTraffic(self.router.client())
        ctl = Controller(self.store, self.computes, traffic, SystemClock())
        self.compute._on_change = ctl.on_replica_event  # what the server wires at start
        self.containers._on_change = ctl.on_replica_event
        self.controller = ctl
        return ctl

    async def start(self) -> Controller:
        await self.router.ensure()
        self.controller = Controller(
            self.store, self.computes, RouterTraffic(self.router.client()), SystemClock()
        )
        # What the server wires at start: containers are recorded only through it.
        self.compute._on_change = self.controller.on_replica_event
        self.containers._on_change = self.controller.on_replica_event
        return self.controller

    async def until(self, dep_id: str, done: Callable[[str], bool], timeout: float = 30) -> str:
        assert self.controller is not None
        deadline = time.monotonic() + timeout
        while True:
            await self.controller.tick()
            phase = self.store.deployments.get(dep_id).phase
            if done(phase):
                return phase
            assert time.monotonic() < deadline, f"stuck in {phase}"
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        """Stop what the test started: replicas outlive their compute (as they outlive a
        crashed control plane), so every recorded revision is stopped before it closes."""
        for service, revision in {(r.service, r.revision) for r in self.store.replicas.list()}:
            await self.compute.stop(service, revision, grace=2)
        await self.compute.aclose()
        await self.containers.aclose()
        if self.podman is not None:
            ids = self.podman.podman("ps", "-aq", "--filter", "label=sluicegate.service=shop")
            if ids.split():
                self.podman.podman("rm", "-f", "-t", "0", *ids.split())
        self.router.stop()
        await self.router.aclose()
        self.store.close()

    async def versions(self, n: int = 40, port: int | None = None) -> Counter[str]:
        replies = await asyncio.to_thread(get_many, port or self.port, n)
        return Counter(r.version for r in replies)


@contextlib.asynccontextmanager
async def _opened(
    request: pytest.FixtureRequest, tmp: Path, store: str, compute: str
) -> AsyncIterator[Env]:
    database = None
    if store == "postgresql":
        database = request.getfixturevalue("pg_server").create_database()
    podman = request.getfixturevalue("podman") if compute == "container" else None
    with processes_killed_at_exit():  # and whatever a failed test left unrecorded
        e = Env(tmp, database, podman)
        try:
            yield e
        finally:
            await e.close()


@pytest.fixture(
    params=[("sqlite", "local"), ("postgresql", "local"), ("sqlite", "container")],
    ids=["sqlite-local", "postgresql-local", "sqlite-container"],
)
async def any_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    """The core flow on both stores, and with containers (a Podman API service; the store
    does not care what runs, so containers are not multiplied by stores)."""
    async with _opened(request, tmp_path, *request.param) as e:
        yield e


@pytest.fixture(params=["local", "container"])
async def any_compute_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    """The same story with local processes and with containers (a Podman API service)."""
    async with _opened(request, tmp_path, "sqlite", request.param) as e:
        yield e


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    with processes_killed_at_exit():  # and whatever a failed test left unrecorded
        e = Env(tmp_path)
        try:
            yield e
        finally:
            await e.close()


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_first_deployment_then_a_canary_that_succeeds(any_env: Env) -> None:
    env = any_env
    ctl = await env.start()
    steps = {"steps": [{"weight": 50, "pause": "1s"}, {"weight": 100}]}
    await ctl.apply_service(env.spec(config=steps), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    assert await env.until(first.id, lambda p: p == Phase.SUCCEEDED) == "succeeded"
    assert await env.versions() == {"v1": 40}

    second = await ctl.deploy("shop", "v2", actor="test")
    await env.until(second.id, lambda p: p == Phase.SHIFTING)
    await env.until(
        second.id,
        lambda p: (
            p == "shifting" and ctl.store.deployments.get(second.id).state["green_weight"] == 50
        ),
    )
    seen = await env.versions(200)
    assert set(seen) == {"v1", "v2"}  # both serve during the 50 % step
    assert await env.versions(20, env.test_port) == {"v2": 20}
    assert await env.until(second.id, lambda p: p == Phase.SUCCEEDED) == "succeeded"
    assert await env.versions() == {"v2": 40}
    assert env.remains("v1") == []  # blue stopped after the wait (containers removed)
    kinds = [e.kind for e in env.store.events.list(subject=second.id)]
    assert kinds[0] == "deployment.created" and "deployment.succeeded" in kinds


async def test_manual_rollback_returns_all_traffic_to_blue_and_stops_green(
    any_compute_env: Env,
) -> None:
    env = any_compute_env
    ctl = await env.start()
    steps = {"steps": [{"weight": 30}, {"pause": "until_promoted"}, {"weight": 100}]}
    await ctl.apply_service(env.spec(config=steps), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    second = await ctl.deploy("shop", "v2", actor="test")
    await env.until(second.id, lambda p: p == Phase.PAUSED_UNTIL_PROMOTED)
    assert set(await env.versions(200)) == {"v1", "v2"}
    stop, seen = threading.Event(), Counter[str]()

    def load() -> None:
        while not stop.is_set():
            replies = get_many(env.port, 20)
            seen.update("200" if r.status == 200 else r.body.decode() for r in replies)

    hammer = threading.Thread(target=load, daemon=True)
    hammer.start()
    ctl.command(second.id, Command.ROLLBACK, "alice")
    assert await env.until(second.id, lambda p: Phase(p).terminal) == "rolled_back"
    stop.set()
    await asyncio.to_thread(hammer.join, 10)
    assert set(seen) == {"200"} and seen["200"] > 20, seen  # no request failed
    assert await env.versions() == {"v1": 40}
    assert env.remains("v2") == []
    assert ctl.current_revision("shop") == "v1"


async def test_failing_hook_rolls_back_before_any_production_traffic(
    any_compute_env: Env,
) -> None:
    env = any_compute_env
    ctl = await env.start()
    await ctl.apply_service(env.spec(), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    # A page green does not have: the sample app and the test image both answer 404.
    failing = {"before_allow_traffic": [{"http": {"path": "/no-such-page"}}]}
    await ctl.apply_service(env.spec(hooks=failing), actor="test")
    second = await ctl.deploy("shop", "v2", actor="test")
    assert await env.until(second.id, lambda p: Phase(p).terminal) == "rolled_back"
    assert await env.versions() == {"v1": 40}
    events = [e.message for e in env.store.events.list(subject=second.id)]
    assert any("answered 404, expected 200" in m for m in events), events
    assert env.remains("v2") == []


async def test_green_that_never_gets_healthy_fails_the_deployment(any_compute_env: Env) -> None:
    env = any_compute_env
    ctl = await env.start()
    await ctl.apply_service(env.spec(), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    sick = env.spec(health_timeout="2s").model_dump(mode="json")
    sick["health_check"]["path"] = "/nothing-here"
    await ctl.apply_service(ServiceSpec.model_validate(sick), actor="test")
    second = await ctl.deploy("shop", "v2", actor="test")
    assert await env.until(second.id, lambda p: Phase(p).terminal) == "failed"
    assert env.remains("v2") == []
    assert ctl.current_revision("shop") == "v1"
    assert await env.versions() == {"v1": 40}


async def test_a_firing_guard_alarm_rolls_back_mid_shift(any_compute_env: Env) -> None:
    env = any_compute_env
    firing: list[str] = []

    async def alarms(dep: object) -> str | None:
        return firing[0] if firing else None

    ctl = await env.start()
    ctl.alarms = alarms
    steps = {"steps": [{"weight": 40, "pause": "30s"}, {"weight": 100}]}
    await ctl.apply_service(env.spec(config=steps), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    second = await ctl.deploy("shop", "v2", actor="test")
    await env.until(second.id, lambda p: p == Phase.SHIFTING)
    firing.append("green-5xx")
    assert await env.until(second.id, lambda p: Phase(p).terminal) == "rolled_back"
    assert await env.versions() == {"v1": 40}
    dep = env.store.deployments.get(second.id)
    assert dep.state["reason"] == "guard fired: green-5xx"
    assert env.remains("v2") == []


def _app_pids(tmp: Path) -> dict[str, set[int]]:
    """Live sample-app processes of this test (their output goes under ``tmp``), by revision."""
    found: dict[str, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
            out = os.readlink(entry / "fd" / "1")
        except OSError:
            continue
        if str(APP_PATH).encode() in argv and ") Z" not in stat and out.startswith(str(tmp)):
            rev = argv[argv.index(b"--version") + 1].decode()
            found.setdefault(rev, set()).add(int(entry.name))
    return found


_LOCAL, _CONTAINER = "local", "container"


@pytest.mark.parametrize(
    ("crash_in", "any_compute_env"),
    [
        (Phase.HEALTH_GATE, _LOCAL),
        (Phase.BEFORE_ALLOW_TRAFFIC, _LOCAL),
        (Phase.SHIFTING, _LOCAL),
        (Phase.PAUSED_UNTIL_PROMOTED, _LOCAL),
        (Phase.TERMINATION_WAIT, _LOCAL),
        # Containers in two phases (about 11 s each): mid-shift, the SIGKILL case
        # (both revisions' containers adopted by label, none duplicated), and blue still up
        # in the wait (removed by a compute that never started it). The other phases replay
        # the controller's own state, alike for any compute; the health gate cannot even be
        # caught (the busybox image is healthy within the tick that starts it).
        (Phase.SHIFTING, _CONTAINER),
        (Phase.TERMINATION_WAIT, _CONTAINER),
    ],
    indirect=["any_compute_env"],
)
async def test_a_control_plane_crash_in_any_phase_resumes_without_orphans(
    any_compute_env: Env, crash_in: Phase
) -> None:
    env = any_compute_env
    ctl = await env.start()
    steps = {"steps": [{"weight": 30, "pause": "1s"}, {"pause": "until_promoted"}, {"weight": 100}]}
    slow_hook = {
        "before_allow_traffic": [
            {"command": [sys.executable, "-c", "import time; time.sleep(1.5)"]}
        ]
    }
    await ctl.apply_service(
        env.spec(config=steps, hooks=slow_hook, termination_wait="3s"), actor="test"
    )
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    second = await ctl.deploy("shop", "v2", actor="test")

    def reached(phase: str) -> bool:
        if phase == Phase.PAUSED_UNTIL_PROMOTED and crash_in != phase:
            ctl.command(second.id, Command.PROMOTE, "test")
        return phase == crash_in

    await env.until(second.id, reached)

    # The crash: the controller and compute vanish; replicas and router keep running.
    ctl = await env.crash()
    await ctl.recover()
    assert set(await env.versions(100)) <= {"v1", "v2"}  # serving throughout

    def done(phase: str) -> bool:
        if phase == Phase.PAUSED_UNTIL_PROMOTED:
            ctl.command(second.id, Command.PROMOTE, "test")
        return phase == Phase.SUCCEEDED

    assert await env.until(second.id, done, timeout=60) == "succeeded"
    assert await env.versions() == {"v2": 40}
    assert env.remains("v1") == []  # blue stopped, none orphaned
    if env.podman is None:
        pids = _app_pids(env.tmp)
        recorded = {r.pid for r in env.store.replicas.list("shop", "v2")}
        assert pids.get("v1", set()) == set()
        assert pids["v2"] == recorded and len(recorded) == 2  # none duplicated
    else:
        left = env.podman.labelled("shop")
        assert [(c.revision, c.state) for c in left] == [("v2", "running")] * 2, left
        assert len(env.store.replicas.list("shop", "v2")) == 2  # none duplicated


async def test_revision_settings_reach_replicas_and_a_rolled_back_deployment_can_be_retried(
    env: Env,
) -> None:
    ctl = await env.start()
    failing = {"before_allow_traffic": [{"http": {"path": "/status/503"}}]}
    spec = shop(env.port, env.test_port, hooks=failing).model_dump(mode="json")
    spec["compute"]["local"]["command"] = [sys.executable, str(APP_PATH), "--port", "{port}"]
    spec["compute"]["local"]["env"] = {"SHOP_VERSION": "{revision}"}
    hooks = spec["deployment"].pop("hooks")
    await ctl.apply_service(ServiceSpec.model_validate(spec), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    spec["deployment"]["hooks"] = hooks
    await ctl.apply_service(ServiceSpec.model_validate(spec), actor="test")
    second = await ctl.deploy("shop", "v2", actor="test", env={"SHOP_VERSION": "v2-tuned"})
    assert await env.until(second.id, lambda p: Phase(p).terminal) == "rolled_back"
    with pytest.raises(ConflictError, match="other"):
        await ctl.deploy("shop", "v2", actor="test", env={"SHOP_VERSION": "something-else"})

    spec["deployment"]["hooks"] = {}
    await ctl.apply_service(ServiceSpec.model_validate(spec), actor="test")
    again = await ctl.retry(second.id, actor="test")
    assert await env.until(again.id, lambda p: Phase(p).terminal) == "succeeded"
    assert await env.versions() == {"v2-tuned": 40}
    with pytest.raises(ConflictError, match="only a failed"):
        await ctl.retry(again.id, actor="test")


async def test_external_endpoints_are_health_checked_and_routed_not_started(
    env: Env, app_factory: Any
) -> None:
    v1, v2 = app_factory(version="v1"), app_factory(version="v2")
    ctl = await env.start()
    spec = shop(env.port, env.test_port, config="AllAtOnce").model_dump(mode="json")
    spec["compute"] = {
        "external": {"revisions": {"v1": [v1.address], "v2": [v2.address], "v3": ["127.0.0.1:9"]}}
    }
    await ctl.apply_service(ServiceSpec.model_validate(spec), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    second = await ctl.deploy("shop", "v2", actor="test")
    assert await env.until(second.id, lambda p: p == Phase.SUCCEEDED) == "succeeded"
    assert await env.versions() == {"v2": 40}
    assert v1.proc.poll() is None  # not ours to stop
    spec["deployment"]["health_timeout"] = "1s"
    await ctl.apply_service(ServiceSpec.model_validate(spec), actor="test")
    third = await ctl.deploy("shop", "v3", actor="test")  # nothing listens there
    assert await env.until(third.id, lambda p: Phase(p).terminal) == "failed"
    assert await env.versions() == {"v2": 40}


class _Load:
    """New clients (no cookies) in pipelined batches, counting every status."""

    def __init__(self, port: int) -> None:
        self.port, self.stop, self.seen = port, threading.Event(), Counter[str]()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            for r in get_many(self.port, 20):
                self.seen[f"{r.version} {r.status}"] += 1
            time.sleep(0.005)

    def __enter__(self) -> _Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


async def test_a_linear_shift_under_load_fails_no_request_and_removes_blue(
    any_compute_env: Env,
) -> None:
    env = any_compute_env
    ctl = await env.start()
    linear = {"linear": {"percent": 34, "interval": "1s"}}
    await ctl.apply_service(env.spec(config=linear), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    weights: list[int] = []

    def watch(phase: str) -> bool:
        weight = env.store.deployments.get(second.id).state.get("green_weight")
        if weight and (not weights or weights[-1] != weight):
            weights.append(weight)
        return Phase(phase).terminal

    with _Load(env.port) as load:
        second = await ctl.deploy("shop", "v2", actor="test")
        assert await env.until(second.id, watch) == "succeeded"
    assert weights == [34, 68, 100], weights
    assert not [k for k in load.seen if not k.endswith(" 200")], load.seen  # none failed
    assert {k.split()[0] for k in load.seen} == {"v1", "v2"}, load.seen
    assert await env.versions() == {"v2": 40}
    assert env.remains("v1") == []


async def test_default_guards_roll_back_a_bad_release_and_pass_a_good_one(
    any_compute_env: Env,
) -> None:
    from sluicegate.monitor.guards import DefaultGuards
    from sluicegate.monitor.sources import RouterSource

    env = any_compute_env
    ctl = await env.start()
    guards = DefaultGuards(RouterSource(env.router.client()), window=30)
    ctl.alarms, ctl.hold = guards, guards.hold
    steps = {"steps": [{"weight": 20, "pause": "4s"}, {"weight": 100}]}
    await ctl.apply_service(env.spec(config=steps), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)

    with _Load(env.port) as load:
        good = await ctl.deploy("shop", "v2", actor="test")
        assert await env.until(good.id, lambda p: Phase(p).terminal) == "succeeded"
    assert not [k for k in load.seen if not k.endswith(" 200")], load.seen

    bad_steps = {"steps": [{"weight": 20, "pause": "60s"}, {"weight": 100}]}
    await ctl.apply_service(env.spec(config=bad_steps), actor="test")
    with _Load(env.port) as load:  # v3 fails 30 % of its requests from its first one
        bad = await ctl.deploy("shop", "v3", actor="test", env=env.failing(30))
        await env.until(bad.id, lambda p: p == Phase.SHIFTING)
        started = time.monotonic()
        assert await env.until(bad.id, lambda p: Phase(p).terminal) == "rolled_back"
        took = time.monotonic() - started
    assert any(k.endswith(" 500") for k in load.seen), load.seen  # it was bad, and seen to be
    reason = env.store.deployments.get(bad.id).state["reason"]
    print(reason)
    assert "default canary guard" in reason and "5xx" in reason, reason
    print(f"bad release rolled back {took:.2f}s after it got traffic")
    assert took < 15, took  # seconds, not the 60 s step
    assert await env.versions() == {"v2": 40}
    assert env.remains("v3") == []
    kinds = [e.kind for e in env.store.events.list(subject=bad.id)]
    assert kinds.index("deployment.alarm") < kinds.index("deployment.traffic_restored"), kinds
