"""LocalCompute against real processes: the sample app, and small scripts that misbehave."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sluicegate.compute import (
    EventKind,
    LocalCompute,
    LocalSpec,
    Replica,
    ReplicaState,
    RestartPolicy,
)
from sluicegate.compute._proc import stat
from sluicegate.errors import ConflictError, NotFoundError, SpecError
from tests._support import REPO_ROOT
from tests.compute.conftest import (
    FAST,
    MARK,
    MARK_VAR,
    Events,
    app_spec,
    marked_pids,
    run,
    script_spec,
    wait_for,
)


def alive(pid: int) -> bool:
    info = stat(pid)
    return info is not None and info.state not in ("Z", "X")


async def all_healthy(compute: LocalCompute, service: str, revision: str) -> bool:
    return all(h.healthy for h in await compute.health(service, revision, timeout=1))


def test_two_replicas_get_distinct_ports_own_sessions_and_are_healthy(tmp_path: Path) -> None:
    events = Events()

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, **FAST)
        replicas = await compute.start("shop", "v1", app_spec(2))
        try:
            assert [r.index for r in replicas] == [0, 1]
            assert len({r.port for r in replicas}) == 2
            assert len({r.pid for r in replicas}) == 2
            for r in replicas:
                assert r.pid is not None and alive(r.pid)
                info = stat(r.pid)
                assert info is not None and info.session == r.pid == info.pgrp  # own session
                assert r.pid_start_time == info.start_time
                assert r.log_path == str(tmp_path / "logs" / "shop" / "v1" / f"{r.index}.log")
            assert compute.endpoints("shop", "v1") == [f"127.0.0.1:{r.port}" for r in replicas]
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy replicas")
            health = await compute.health("shop", "v1")
            assert [(h.replica.index, h.status_code, h.state) for h in health] == [
                (0, 200, ReplicaState.RUNNING),
                (1, 200, ReplicaState.RUNNING),
            ]
            # start is idempotent: nothing new is started
            assert await compute.start("shop", "v1", app_spec(2)) == replicas
            assert events.kinds() == ["started", "started"]
        finally:
            await compute.stop("shop", "v1")
        for r in replicas:
            assert r.pid is not None and not alive(r.pid)
        stopped = [e for e in events.seen if e.kind == EventKind.STOPPED]
        assert len(stopped) == 2
        assert all(e.detail == "exited with code 0 after SIGTERM" for e in stopped), stopped
        with pytest.raises(NotFoundError):
            compute.endpoints("shop", "v1")
        await compute.aclose()

    run(scenario())


def test_a_killed_replica_is_restarted_on_the_same_port(tmp_path: Path) -> None:
    events = Events()

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, **FAST)
        first = await compute.start("shop", "v1", app_spec(2))
        try:
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy replicas")
            victim = first[1]
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            await wait_for(lambda: "restarted" in events.kinds(1), what="a restart")
            now = compute.replicas("shop", "v1")
            assert now[0] == first[0]  # the other replica is untouched
            assert now[1].pid != victim.pid and now[1].port == victim.port
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy again")
            health = await compute.health("shop", "v1")
            assert [h.restarts for h in health] == [0, 1]
            exited = next(e for e in events.seen if e.kind == EventKind.EXITED)
            assert "killed by SIGKILL" in exited.detail
            restarted = next(e for e in events.seen if e.kind == EventKind.RESTARTED)
            assert restarted.replica == now[1] and restarted.restarts == 1
            log = compute.logs("shop", "v1", replica=1)
            assert f"pid {victim.pid} killed by SIGKILL" in log
            assert f"started pid {now[1].pid} on port {victim.port}" in log
        finally:
            await compute.stop("shop", "v1")
            await compute.aclose()

    run(scenario())


def test_restart_moves_to_a_new_port_when_the_old_one_was_taken(tmp_path: Path) -> None:
    events = Events()

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, **FAST)
        [before] = await compute.start("shop", "v1", app_spec(1))
        squatter = None
        try:
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy replica")
            await compute.aclose()  # pause supervision while the port is taken
            assert before.pid is not None
            os.kill(before.pid, signal.SIGKILL)
            await wait_for(lambda: not alive(before.pid or 0), what="the kill")
            squatter = socket.socket()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for _ in range(100):  # the kernel frees the port a few ms after the zombie
                try:
                    squatter.bind(("127.0.0.1", before.port))
                    break
                except OSError:
                    time.sleep(0.01)
            squatter.listen()
            started = time.monotonic()
            await wait_for(lambda: (compute.check(), "restarted" in events.kinds())[1])
            assert time.monotonic() - started >= 0.9  # it waited a second for the old port
            [after] = compute.replicas("shop", "v1")
            assert after.port != before.port
            assert compute.endpoints("shop", "v1") == [f"127.0.0.1:{after.port}"]
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy on new port")
        finally:
            if squatter is not None:
                squatter.close()
            await compute.stop("shop", "v1")
            await compute.aclose()

    run(scenario())


def test_gives_up_after_quick_crashes_and_start_tries_again(tmp_path: Path) -> None:
    events = Events()
    policy = RestartPolicy(backoff_initial=0.02, backoff_max=0.1, min_uptime=5, max_quick_crashes=3)

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, poll_interval=0.02, restart=policy)
        spec = script_spec("import sys; print('boom', flush=True); sys.exit(3)")
        await compute.start("shop", "bad", spec)
        try:
            await wait_for(lambda: "failed" in events.kinds(), what="giving up")
            assert events.kinds() == [
                "started", "exited", "restarted", "exited", "restarted", "failed",
            ]  # fmt: skip
            [health] = await compute.health("shop", "bad")
            assert health.state == ReplicaState.FAILED and not health.healthy
            assert health.restarts == 2
            assert "exited with code 3" in health.detail and "gave up" in health.detail
            log = compute.logs("shop", "bad")
            assert log.splitlines().count("boom") == 3 and "gave up" in log
            await compute.start("shop", "bad", spec)  # a new start tries again
            assert events.kinds()[6] == "started"
            await wait_for(lambda: events.kinds().count("failed") == 2, what="giving up again")
        finally:
            await compute.stop("shop", "bad")
            await compute.aclose()

    run(scenario())


TRAP_TERM = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *a: print('got SIGTERM, staying', flush=True))
child = subprocess.Popen([sys.executable, '-c',
    'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])
print('ready', os.getpid(), 'child', child.pid, flush=True)
while True:
    time.sleep(0.05)
"""


def test_stop_sigkills_a_process_group_that_ignores_sigterm_after_the_grace(
    tmp_path: Path,
) -> None:
    events = Events()

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, **FAST)
        [replica] = await compute.start("shop", "stubborn", script_spec(TRAP_TERM, stop_grace=5))

        def ready_line() -> str:
            lines = compute.logs("shop", "stubborn").splitlines()
            return next((x for x in lines if x.startswith("ready ")), "")

        await wait_for(lambda: bool(ready_line()), what="SIGTERM trapped")
        line = ready_line()
        child = int(line.split()[-1])
        assert alive(child)
        started = time.monotonic()
        await compute.stop("shop", "stubborn", grace=0.5)  # overrides the spec's 5 s
        took = time.monotonic() - started
        assert 0.5 <= took < 3, took
        assert replica.pid is not None and not alive(replica.pid)
        await wait_for(lambda: not alive(child), timeout=2, what="the group's child killed")
        [stopped] = [e for e in events.seen if e.kind == EventKind.STOPPED]
        assert stopped.detail == "ignored SIGTERM for 0.5s; killed by SIGKILL"
        assert "got SIGTERM, staying" in compute.logs("shop", "stubborn")
        await compute.aclose()

    run(scenario())


CHATTY = """
import os, sys, time
print('hello from replica', os.environ['REPLICA'], 'of', os.environ['WHO'], flush=True)
for i in range(int(os.environ['LINES'])):
    print(f'line {i:04d} ' + 'x' * 90, flush=True)
time.sleep(60)
"""


def test_logs_are_captured_per_replica_and_rotated(tmp_path: Path) -> None:
    async def scenario() -> None:
        compute = LocalCompute(tmp_path, log_max_bytes=5000, log_backups=2, **FAST)
        env = {"REPLICA": "{replica}", "WHO": "{service}/{revision}@{port}", "LINES": "0"}
        replicas = await compute.start("shop", "v7", script_spec(CHATTY, replicas=2, env=env))
        try:
            for r in replicas:
                expected = f"hello from replica {r.index} of shop/v7@{r.port}"
                await wait_for(lambda r=r, e=expected: e in compute.logs("shop", "v7", r.index))
            both = compute.logs("shop", "v7")
            assert "==> replica 0 <==" in both and "==> replica 1 <==" in both
            assert compute.logs("shop", "v7", replica=1, tail=1).startswith("hello from replica 1")
            with pytest.raises(NotFoundError):
                compute.logs("shop", "v7", replica=5)
        finally:
            await compute.stop("shop", "v7", grace=0)

        # a chatty replica's log is rotated by size while it runs
        env["LINES"] = "200"  # ~20 KB against a 5 KB limit
        [r] = await compute.start("shop", "v8", script_spec(CHATTY, env=env))
        try:
            path = Path(r.log_path or "")
            await wait_for(lambda: "line 0199" in compute.logs("shop", "v8", tail=5))
            await wait_for(lambda: path.with_name("0.log.1").exists(), what="rotation")
            compute.check()
            assert path.stat().st_size <= 5000
            assert not path.with_name("0.log.3").exists()  # two backups at most
            assert compute.logs("shop", "v8", replica=0, tail=2).endswith("line 0199 " + "x" * 90)
        finally:
            await compute.stop("shop", "v8", grace=0)
            await compute.aclose()
        # logs outlive the revision
        assert "hello from replica 0" in LocalCompute(tmp_path).logs("shop", "v7", 0)

    run(scenario())


def test_start_scales_down_and_rejects_bad_specs(tmp_path: Path) -> None:
    async def scenario() -> None:
        compute = LocalCompute(tmp_path, **FAST)
        two = await compute.start("shop", "v1", app_spec(2))
        try:
            one = await compute.start("shop", "v1", app_spec(1))
            assert one == two[:1]
            assert two[1].pid is not None and not alive(two[1].pid)
            with pytest.raises(SpecError, match=r"compute\.local\.command"):
                await compute.start("shop", "v2", LocalSpec(command=["/no/such/program"]))
            with pytest.raises(SpecError, match="replicas"):
                await compute.start("shop", "v3", app_spec(0))
            with pytest.raises(SpecError, match="service"):
                await compute.start("../etc", "v1", app_spec(1))
            with pytest.raises(NotFoundError):
                await compute.health("shop", "v2")
            await compute.stop("shop", "never-started")  # not an error
        finally:
            await compute.stop("shop", "v1")
            await compute.aclose()

    run(scenario())


def test_adopt_after_a_control_plane_crash(tmp_path: Path) -> None:
    """The replicas' parent is SIGKILLed; a new LocalCompute takes them over from records."""
    script = Path(__file__).with_name("control_plane.py")
    env = {**os.environ, MARK_VAR: MARK, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, str(script), str(tmp_path), "shop", "v1", "2"]
    plane = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    try:
        assert plane.stdout is not None
        records = [Replica(**r) for r in json.loads(plane.stdout.readline())]
    finally:
        plane.kill()
        plane.wait(5)
        if plane.stdout is not None:
            plane.stdout.close()
    events = Events()

    async def scenario() -> None:
        compute = LocalCompute(tmp_path, on_change=events, **FAST)
        # as a store would give them back: no log path, start time as a float
        stored = [replace(r, log_path=None, pid_start_time=float(r.pid_start_time or 0))
                  for r in records]  # fmt: skip
        adoption = await compute.adopt("shop", "v1", app_spec(2), stored)
        try:
            assert adoption.gone == []
            assert [(r.pid, r.port) for r in adoption.adopted] == [(r.pid, r.port) for r in records]
            assert adoption.adopted == [replace(r, started_at=r.started_at) for r in records]
            assert events.kinds() == ["adopted", "adopted"]
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="adopted healthy")
            with pytest.raises(ConflictError):
                await compute.adopt("shop", "v1", app_spec(2), stored)
            # an adopted replica is supervised: killed, it comes back on its port
            victim = records[0]
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            await wait_for(lambda: "restarted" in events.kinds(0), what="restart of adopted")
            assert compute.replicas("shop", "v1")[0].port == victim.port
            await wait_for(lambda: all_healthy(compute, "shop", "v1"), what="healthy again")
        finally:
            await compute.stop("shop", "v1", grace=2)
            await compute.aclose()
        stopped = {e.replica.index: e.detail for e in events.seen if e.kind == EventKind.STOPPED}
        assert stopped == {
            0: "exited with code 0 after SIGTERM",  # restarted here: our child
            1: "exited after SIGTERM",  # adopted, not our child: no exit code to read
        }
        for r in records:
            assert not alive(r.pid or 0)

    run(scenario())


def test_adopt_reports_stale_records_gone_and_kills_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = LocalCompute(tmp_path / "a", **FAST)
        second = LocalCompute(tmp_path / "b", **FAST)
        running = await first.start("shop", "v1", app_spec(2))
        try:
            dead = (await first.start("shop", "old", app_spec(1)))[0]
            await first.stop("shop", "old")
            assert dead.pid is not None and not alive(dead.pid)
            reused = replace(running[0], pid_start_time=(running[0].pid_start_time or 0) + 1)
            unrelated = replace(running[1], pid=os.getpid())  # a live process, not a replica
            no_pid = replace(running[1], index=2, pid=None, pid_start_time=None)
            records = [reused, unrelated, no_pid]
            for spec_rev, recs in (("old", [dead]), ("v1", records)):
                adoption = await second.adopt("shop", spec_rev, app_spec(3), recs)
                assert adoption.adopted == [] and adoption.gone == recs
                assert second.endpoints("shop", spec_rev) == []
            assert all(alive(r.pid or 0) for r in running)  # nothing was signalled
            await second.stop("shop", "v1")
            assert all(alive(r.pid or 0) for r in running)
            assert await all_healthy(first, "shop", "v1") or True
        finally:
            await first.stop("shop", "v1")
            await first.aclose()
            await second.aclose()
        assert not marked_pids()

    run(scenario())
