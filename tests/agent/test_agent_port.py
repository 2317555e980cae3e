"""``sluice agent --port P`` with P taken: one clear line, exit code 2, nothing left running."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests._support import REPO_ROOT


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


def test_a_taken_port_ends_the_agent_with_one_line_naming_port_and_option(
    tmp_path: Path,
) -> None:
    mark = uuid.uuid4().hex
    with held_port() as port:
        # The server is never reached: the agent stops before it would sync.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "sluicegate",
                "agent",
                "--server",
                "http://127.0.0.1:9",
                "--env",
                "prod",
                "--port",
                str(port),
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
            env={**os.environ, "SLUICE_TEST_MARK": mark},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert marked_processes(mark) == [], "the agent left processes behind"
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"sluice: error: cannot listen on 127.0.0.1:{port} (--port): address already in use"
    )
    assert "Traceback" not in proc.stderr
