"""The session guard (tests/_support/leakguard.py): processes the run started are found by
their inherited marker, killed with their process group, and a run that leaves one fails and
names the test after which it appeared."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support import REPO_ROOT
from tests._support.leakguard import (
    MARK_VAR,
    kill_processes,
    marked_processes,
    processes_killed_at_exit,
)

VAR = "SLUICEGATE_GUARD_SELFTEST"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed and reaped at teardown whatever the test did."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def spawn(
    started: list[subprocess.Popen[bytes]],
    command: str,
    marker: str | None,
    *,
    session: bool = True,
) -> subprocess.Popen[bytes]:
    """``command`` (split on spaces, or run by sh when it has a ``&``), with ``VAR=marker``
    in its environment when ``marker`` is given; in its own session unless told not to."""
    env = {**os.environ, **({VAR: marker} if marker is not None else {})}
    argv = ["sh", "-c", command] if "&" in command else command.split()
    proc = subprocess.Popen(argv, env=env, start_new_session=session)
    started.append(proc)
    return proc


def pids(run_id: str) -> set[int]:
    return {p.pid for p in marked_processes(run_id, VAR)}


def test_finds_only_processes_carrying_its_run_id(started: list[subprocess.Popen[bytes]]) -> None:
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    ours = spawn(started, "sleep 60", mine)
    nested = spawn(started, "sleep 61", f"{other}:{mine}")  # a run inside another
    spawn(started, "sleep 62", other)
    spawn(started, "sleep 63", None)
    assert pids(mine) == {ours.pid, nested.pid}
    [found] = [p for p in marked_processes(mine, VAR) if p.pid == ours.pid]
    assert (found.cmdline, found.ppid, found.pgrp) == ("sleep 60", os.getpid(), ours.pid)


def test_kills_a_group_leader_with_its_whole_group(
    started: list[subprocess.Popen[bytes]],
) -> None:
    run_id = uuid.uuid4().hex
    leader = spawn(started, "sleep 60 & sleep 60 & wait", run_id)
    deadline = time.monotonic() + 10
    while len(pids(run_id)) < 3:  # the shell and its two children
        assert time.monotonic() < deadline, f"the shell's children never came: {pids(run_id)}"
        time.sleep(0.01)
    found = marked_processes(run_id, VAR)
    assert {p.pgrp for p in found} == {leader.pid}
    assert kill_processes([p for p in found if p.pid == leader.pid]) == [True]
    assert _state(leader.pid) == "gone"  # killed, and reaped since it is our child
    # The children got the same SIGKILL; a busy kernel may take a moment to finish them.
    deadline = time.monotonic() + 10
    while pids(run_id):
        assert time.monotonic() < deadline, f"the group outlived its leader: {pids(run_id)}"
        time.sleep(0.01)


def test_kills_a_process_in_our_group_without_touching_the_group(
    started: list[subprocess.Popen[bytes]],
) -> None:
    run_id = uuid.uuid4().hex
    child = spawn(started, "sleep 60", run_id, session=False)
    [found] = marked_processes(run_id, VAR)
    assert found.pgrp == os.getpgrp()
    assert kill_processes([found]) == [True]  # and we are still here to see it
    assert _state(child.pid) == "gone"


def test_processes_started_in_a_scope_are_killed_at_its_end(
    started: list[subprocess.Popen[bytes]],
) -> None:
    with processes_killed_at_exit(VAR) as scope:
        inside = spawn(started, "sleep 60", None)
        assert pids(scope) == {inside.pid}
    assert _state(inside.pid) == "gone"
    assert VAR not in os.environ
    after = spawn(started, "sleep 60", None)
    assert after.poll() is None and pids(scope) == set()


def test_the_run_itself_is_marked_for_what_it_starts() -> None:
    out = subprocess.run(
        ["sh", "-c", f'echo "${MARK_VAR}"'], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == os.environ[MARK_VAR] != ""


LEAKY_RUN = """
import os, subprocess, time
import pytest

@pytest.fixture(scope="session")
def shared():
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()

def test_clean_but_uses_a_session_process(shared):
    assert shared.poll() is None

def test_leaves_a_sleep_behind(tmp_path):
    proc = subprocess.Popen(["sleep", "301"], start_new_session=True)
    with open(os.environ["LEAK_PID_FILE"], "w") as f:
        f.write(str(proc.pid))

def test_clean_after_the_leak(shared):
    assert shared.poll() is None
"""


GUARD_ONLY = ("-p", "tests._support.leakguard", "-p", "no:cacheprovider")


def test_a_run_that_leaves_a_process_fails_names_the_test_and_kills_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "leaked.pid"
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("LEAK_PID_FILE", str(pid_file))
    pytester.makepyfile(test_leaky=LEAKY_RUN)
    result = pytester.runpytest_subprocess(*GUARD_ONLY)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    leaked = int(pid_file.read_text())
    output = result.stdout.str()
    assert "1 process(es) started by this test run were still running at its end" in output
    assert "first seen after test_leaky.py::test_leaves_a_sleep_behind:" in output
    assert f"pid {leaked} " in output and "killed): sleep 301" in output
    assert "sleep 300" not in output  # the session fixture stopped its own
    assert _state(leaked) == "gone"


def test_a_run_that_stops_everything_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makepyfile(
        test_tidy="""
import subprocess

def test_stops_what_it_starts():
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    proc.kill()
    proc.wait()
"""
    )
    result = pytester.runpytest_subprocess(*GUARD_ONLY)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "still running" not in result.stdout.str()


def _state(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return text[text.rindex(")") + 2 :].split()[0]
