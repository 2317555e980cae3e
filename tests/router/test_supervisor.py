"""The control plane's router runs in its own process, is adopted after a restart, and its
secrets persist with owner-only permissions."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
from pathlib import Path

import pytest

from sluicegate.errors import RouterUnavailableError
from sluicegate.router.supervisor import RouterSupervisor, process_start_time


def test_router_is_started_then_adopted_by_a_new_supervisor(tmp_path: Path) -> None:
    first = RouterSupervisor(tmp_path)
    info = asyncio.run(first.ensure())
    try:
        assert first.alive() and not first.adopted
        # A second supervisor (a restarted control plane) finds the same process.
        second = RouterSupervisor(tmp_path)
        adopted = asyncio.run(second.ensure())
        assert adopted == info and second.adopted
        assert second.token == first.token and second.sticky_secret == first.sticky_secret
        for name in ("admin.token", "sticky.secret"):
            mode = stat.S_IMODE(os.stat(tmp_path / "router" / name).st_mode)
            assert mode == 0o600
    finally:
        first.stop()
    assert process_start_time(info.pid) is None or not first.alive()


def test_a_dead_recorded_router_is_replaced(tmp_path: Path) -> None:
    first = RouterSupervisor(tmp_path)
    info = asyncio.run(first.ensure())
    os.kill(info.pid, signal.SIGKILL)
    assert first._proc is not None
    first._proc.wait(5)
    second = RouterSupervisor(tmp_path)
    try:
        new = asyncio.run(second.ensure())
        assert new.pid != info.pid and not second.adopted
        assert second.alive()
    finally:
        second.stop()


def test_a_router_that_cannot_start_is_reported_with_its_own_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        supervisor = RouterSupervisor(tmp_path, admin_port=port)
        with pytest.raises(RouterUnavailableError) as failed:
            asyncio.run(supervisor.ensure())
    assert str(failed.value).startswith(
        f"the router exited with 2: cannot listen on 127.0.0.1:{port} (admin.port): "
        "address already in use; see "
    )
