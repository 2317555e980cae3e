"""examples/_cleanup.py, with which the demos stop what ``sluice server`` started for them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests._support import REPO_ROOT


def _load() -> ModuleType:
    path = REPO_ROOT / "examples" / "_cleanup.py"
    spec = importlib.util.spec_from_file_location("_cleanup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cleanup = _load()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def spawn(started: list[subprocess.Popen[bytes]], script: str, run_id: str) -> int:
    proc = subprocess.Popen(
        ["sh", "-c", script], env={**os.environ, cleanup.DEMO_VAR: run_id}, start_new_session=True
    )  # as the server starts router and replicas
    started.append(proc)
    return proc.pid


def test_stop_marked_stops_every_process_of_the_run_and_no_other(
    started: list[subprocess.Popen[bytes]],
) -> None:
    mine, other = cleanup.new_run_id(), cleanup.new_run_id()
    spawn(started, "sleep 60 & sleep 60 & wait", mine)
    spawn(started, "trap '' TERM; sleep 60 & wait", mine)  # ignores SIGTERM: needs SIGKILL
    bystander = spawn(started, "exec sleep 60", other)
    deadline = time.monotonic() + 10
    while len(cleanup._marked(mine)) < 5:  # two shells, three sleeps
        assert time.monotonic() < deadline, cleanup._marked(mine)
        time.sleep(0.01)
    assert cleanup.stop_marked(mine, grace=0.5) == 5
    assert cleanup._marked(mine) == []
    assert [pid for pid, _ in cleanup._marked(other)] == [bystander]
