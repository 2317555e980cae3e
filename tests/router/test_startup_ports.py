"""``sluice router`` with a port taken: one clear line, exit code 2, nothing left running."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests._support import REPO_ROOT, free_port, router_config


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A port another program holds: bound and listening, as a server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def marked_processes(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``SLUICE_TEST_MARK=<mark>``."""
    found = []
    needle = f"SLUICE_TEST_MARK={mark}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
    return found


def run_router(
    tmp_path: Path, config: dict[str, object], workers: int
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    mark = uuid.uuid4().hex
    env = {**os.environ, "SLUICE_ADMIN_TOKEN": "test-token", "SLUICE_TEST_MARK": mark}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluicegate",
            "router",
            "--config",
            str(path),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert marked_processes(mark) == [], "the router left processes behind"
    return proc


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_listener_port_ends_start_up_with_one_line_naming_port_and_field(
    tmp_path: Path, workers: int
) -> None:
    with held_port() as port:
        config = router_config({"blue": ["127.0.0.1:9"]}, listener_port=port)
        proc = run_router(tmp_path, config, workers)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"sluice: error: cannot listen on 127.0.0.1:{port} (listeners[0].port): "
        "address already in use"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_admin_port_ends_start_up_with_one_line_naming_port_and_field(
    tmp_path: Path, workers: int
) -> None:
    with held_port() as port:
        config = router_config({"blue": ["127.0.0.1:9"]}, admin_port=port)
        proc = run_router(tmp_path, config, workers)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"sluice: error: cannot listen on 127.0.0.1:{port} (admin.port): address already in use"
    )
    assert "Traceback" not in proc.stderr


def test_every_taken_port_is_named_on_the_one_line(tmp_path: Path) -> None:
    with held_port() as admin, held_port() as listener:
        config = router_config({"blue": ["127.0.0.1:9"]}, admin_port=admin, listener_port=listener)
        config["listeners"].append(
            {
                "name": "free",
                "port": free_port(),
                "default": {"forward": [{"target_group": "blue"}]},
            }
        )
        proc = run_router(tmp_path, config, 1)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"sluice: error: cannot listen on 127.0.0.1:{admin} (admin.port): address already "
        f"in use; cannot listen on 127.0.0.1:{listener} (listeners[0].port): address "
        "already in use"
    )
