"""Compute tests run real processes; every one carries a marker in its environment, and no
test may leave one behind (checked after each test and again at the end of each module)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.compute import LocalSpec, ReplicaEvent, RestartPolicy
from tests._support import APP_PATH

MARK_VAR = "SLUICE_COMPUTE_TEST"
MARK = f"compute-{uuid.uuid4().hex}"

# Fast supervision for tests: poll every 50 ms, restart 50 ms after a crash.
FAST = {"poll_interval": 0.05, "restart": RestartPolicy(backoff_initial=0.05, backoff_max=0.5)}


def app_spec(replicas: int = 2, **kw: Any) -> LocalSpec:
    """The sample app, one replica per ``{port}``, named after its index."""
    command = [sys.executable, str(APP_PATH), "--port", "{port}", "--version", "{revision}",
               "--name", "r{replica}"]  # fmt: skip
    return LocalSpec(command=command, env={MARK_VAR: MARK}, replicas=replicas,
                     stop_grace=kw.pop("stop_grace", 5.0), **kw)  # fmt: skip


def script_spec(code: str, replicas: int = 1, **kw: Any) -> LocalSpec:
    """``python -c code`` as a replica (``{port}`` etc. are substituted in ``code`` too)."""
    env = {MARK_VAR: MARK, **kw.pop("env", {})}
    return LocalSpec(command=[sys.executable, "-c", code, "{port}"], env=env,
                     replicas=replicas, stop_grace=kw.pop("stop_grace", 1.0), **kw)  # fmt: skip


def marked_pids() -> list[int]:
    """Live (non-zombie) processes whose environment carries this session's marker."""
    needle = f"{MARK_VAR}={MARK}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _kill_leftovers() -> list[int]:
    left = marked_pids()
    for pid in left:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):  # already gone
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, os.WNOHANG)
    return left


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 2
    while marked_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _kill_leftovers()
    assert not left, f"the test left processes behind (now killed): {left}"


@pytest.fixture(autouse=True, scope="module")
def no_orphans_at_module_end() -> Iterator[None]:
    yield
    left = _kill_leftovers()
    assert not left, f"test processes outlived the module (now killed): {left}"


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


class Events:
    """An ``on_change`` callback that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[ReplicaEvent] = []

    def __call__(self, event: ReplicaEvent) -> None:
        self.seen.append(event)

    def kinds(self, index: int | None = None) -> list[str]:
        return [e.kind.value for e in self.seen if index is None or e.replica.index == index]
