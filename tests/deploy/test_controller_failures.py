"""The controller when the world misbehaves: a router that does not answer, a crash between
a command's 202 and its apply. Real store, real replicas, real router (in one process)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluicegate.clock import SystemClock
from sluicegate.compute import ComputeSelector, ExternalCompute
from sluicegate.compute.local import LocalCompute
from sluicegate.deploy import Command, Phase
from sluicegate.deploy.controller import Controller
from sluicegate.errors import ConflictError
from sluicegate.router.traffic import RouterTraffic
from tests._support.leakguard import processes_killed_at_exit
from tests.deploy.test_controller import Env, shop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    with processes_killed_at_exit():  # and whatever a failed test left unrecorded
        e = Env(tmp_path)
        try:
            yield e
        finally:
            await e.close()


async def _paused_at_gate(env: Env, ctl: Controller) -> str:
    gate = {"steps": [{"weight": 20}, {"pause": "until_promoted"}, {"weight": 100}]}
    await ctl.apply_service(shop(env.port, env.test_port, config=gate), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.SUCCEEDED)
    second = await ctl.deploy("shop", "v2", actor="test")
    await env.until(second.id, lambda p: p == Phase.PAUSED_UNTIL_PROMOTED)
    return second.id


async def test_a_command_stored_before_a_crash_is_applied_by_the_next_controller(
    env: Env, tmp_path: Path
) -> None:
    ctl = await env.start()
    dep = await _paused_at_gate(env, ctl)
    accepted = ctl.command(dep, Command.ROLLBACK, "alice")  # the 202; then the crash
    assert [c.id for c in env.store.commands.pending(dep)] == [accepted.id]

    # A new control plane on the same store and state dir, as after a SIGKILL.
    compute = LocalCompute(tmp_path / "state", poll_interval=0.1)
    try:
        again = Controller(
            env.store,
            ComputeSelector(local=compute, external=ExternalCompute()),
            RouterTraffic(env.router.client()),
            SystemClock(),
        )
        env.controller = again
        await again.recover()
        assert await env.until(dep, lambda p: Phase(p).terminal) == "rolled_back"
        assert env.store.deployments.get(dep).state["reason"] == "rolled back by alice"
        assert env.store.commands.pending(dep) == []
        assert await env.versions() == {"v1": 40}
    finally:
        await compute.aclose()


async def test_a_router_that_stops_answering_mid_deployment_is_an_event_and_the_step_retried(
    env: Env,
) -> None:
    ctl = await env.start()
    dep = await _paused_at_gate(env, ctl)
    assert env.router.info is not None
    pid = env.router.info.pid
    os.kill(pid, signal.SIGSTOP)  # the admin API accepts nothing: every call times out
    try:
        ctl.command(dep, Command.PROMOTE, "alice")
        await asyncio.wait_for(ctl.tick(), 30)
        retrying = [
            e for e in env.store.events.list(subject=dep) if e.kind == "deployment.retrying"
        ]
        assert len(retrying) == 1
        assert "did not answer" in retrying[0].message
        assert "giving up after 1m" in retrying[0].message
        await asyncio.wait_for(ctl.tick(), 30)  # the same trouble is not said again
        assert (
            len([e for e in env.store.events.list(subject=dep) if e.kind == "deployment.retrying"])
            == 1
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await env.until(dep, lambda p: Phase(p).terminal) == "succeeded"
    assert await env.versions() == {"v2": 40}


async def test_a_router_that_never_comes_back_gives_the_deployment_up_after_the_bound(
    env: Env,
) -> None:
    ctl = await env.start()
    dep = await _paused_at_gate(env, ctl)
    ctl.failure_bound = 0.5
    assert env.router.info is not None
    os.kill(env.router.info.pid, signal.SIGKILL)
    ctl.command(dep, Command.PROMOTE, "alice")
    await ctl.tick()
    await asyncio.sleep(0.6)
    await ctl.tick()
    state = env.store.deployments.get(dep)
    assert (state.phase, state.state["ending"]) == ("rolling_back", "failed")
    assert "kept failing for" in state.state["reason"]
    await env.router.ensure()  # the server's watchdog would do this
    assert await env.until(dep, lambda p: Phase(p).terminal) == "failed"
    await ctl.recover()
    assert await env.versions() == {"v1": 40}


async def test_a_deployment_record_that_cannot_be_read_is_given_up_back_to_blue(env: Env) -> None:
    ctl = await env.start()
    dep = await _paused_at_gate(env, ctl)
    with env.store.transaction() as tx:
        tx.connection.exec_driver_sql(
            "UPDATE deployments SET state = json_set(state, '$.phase', 'warping') "
            f"WHERE id = '{dep}'"
        )
    ctl.failure_bound = 0.2
    await ctl.tick()
    await asyncio.sleep(0.3)
    assert await env.until(dep, lambda p: Phase(p).terminal) == "failed"
    kinds = [e.kind for e in env.store.events.list(subject=dep)]
    assert "deployment.retrying" in kinds and "deployment.failed_to_apply" in kinds
    assert await env.versions() == {"v1": 40}
    assert ctl.world.running("shop", "v2") == []


async def test_deleting_a_service_is_refused_mid_deployment_then_stops_it_and_closes_its_port(
    env: Env,
) -> None:
    ctl = await env.start()
    dep = await _paused_at_gate(env, ctl)
    with pytest.raises(ConflictError, match="has an active deployment"):
        await ctl.delete_service("shop", "alice")
    ctl.command(dep, Command.ROLLBACK, "alice")
    await env.until(dep, lambda p: Phase(p).terminal)
    assert await ctl.delete_service("shop", "alice") == ["v1"]
    assert env.store.services.list() == []
    assert env.store.replicas.list() == []
    with pytest.raises(OSError):
        await env.versions(1)  # the listener is closed
    deleted = env.store.events.list(subject="shop", kind="service.deleted")
    assert deleted[0].message == "service shop deleted; stopped v1"


async def test_a_port_taken_after_the_deploy_check_fails_the_first_deployment_with_the_cause(
    env: Env,
) -> None:
    ctl = await env.start()
    slow_hook = {
        "before_allow_traffic": [
            {"command": [sys.executable, "-c", "import time; time.sleep(1.5)"]}
        ]
    }
    await ctl.apply_service(shop(env.port, env.test_port, hooks=slow_hook), actor="test")
    first = await ctl.deploy("shop", "v1", actor="test")
    await env.until(first.id, lambda p: p == Phase.BEFORE_ALLOW_TRAFFIC)
    with socket.socket() as squatter:  # another program takes the port meanwhile
        squatter.bind(("127.0.0.1", env.port))
        squatter.listen()
        assert await env.until(first.id, lambda p: Phase(p).terminal) == "failed"
    reason = env.store.deployments.get(first.id).state["reason"]
    assert reason.startswith("the router refused the routes of shop: listener.port: ")
    assert f"127.0.0.1:{env.port}" in reason
    assert ctl.world.running("shop", "v1") == []
