"""A pytest plugin: no process started by the test run outlives it.

At session start the run puts ``SLUICEGATE_TEST_RUN=<id>`` in ``os.environ``, so everything
it starts (sample apps, routers, servers, and what those start in turn) inherits the marker.
After each test's teardown the processes carrying the marker that were not seen before are
attributed to that test; at session end every marked process still running is killed
(SIGKILL, its whole process group when it leads one), listed with the test after which it
first appeared, and the session fails. Session- and module-scoped fixtures may keep a process
across tests; only what is left when the session ends counts.

A nested run (pytest started by a test) appends its own id to the inherited value, so the
outer run still recognises what the inner one leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "MARK_VAR",
    "SCOPE_VAR",
    "Leftover",
    "MarkedProcess",
    "kill_marked",
    "kill_processes",
    "marked_processes",
    "processes_killed_at_exit",
]

MARK_VAR = "SLUICEGATE_TEST_RUN"
SCOPE_VAR = "SLUICEGATE_TEST_SCOPE"

_run_id = pytest.StashKey[str]()
_previous = pytest.StashKey[str | None]()
_first_seen = pytest.StashKey[dict[tuple[int, int], str]]()
_leftovers = pytest.StashKey[list["Leftover"]]()


@dataclass(frozen=True)
class MarkedProcess:
    """A live process of ours whose environment carries a given run id."""

    pid: int
    start_time: int  # clock ticks since boot (/proc/PID/stat field 22): pid + this = identity
    ppid: int
    pgrp: int
    cmdline: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start_time)


@dataclass(frozen=True)
class Leftover:
    """A marked process found at session end, with the test after which it first appeared."""

    process: MarkedProcess
    started_by: str | None  # None: started during collection, or after the last test
    killed: bool


def _stat(pid: str) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, start_time) from /proc/PID/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _carries(environ: bytes, var: str, run_id: str) -> bool:
    prefix = f"{var}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return run_id in entry[len(prefix) :].decode(errors="replace").split(":")
    return False


def marked_processes(run_id: str, var: str = MARK_VAR) -> list[MarkedProcess]:
    """Live (non-zombie) processes of this uid, other than this one, whose environment has
    ``var`` naming ``run_id`` (a ``:``-separated list of run ids)."""
    found = []
    me, uid = os.getpid(), os.getuid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if not _carries(environ, var, run_id):
            continue
        stat = _stat(entry.name)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        found.append(MarkedProcess(int(entry.name), stat[3], stat[1], stat[2], command))
    return found


def _alive(process: MarkedProcess) -> bool:
    stat = _stat(str(process.pid))
    return stat is not None and stat[0] not in ("Z", "X") and stat[3] == process.start_time


def kill_processes(processes: Iterable[MarkedProcess], timeout: float = 10.0) -> list[bool]:
    """SIGKILL each process (its process group when it leads one, never our own group), reap
    it when it is our child, and wait up to ``timeout`` s; per process, whether it is gone."""
    processes = list(processes)
    own_group = os.getpgrp()
    for p in processes:
        if not _alive(p):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if p.pgrp == p.pid and p.pgrp != own_group:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        for p in processes:
            with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
                os.waitpid(p.pid, os.WNOHANG)
        gone = [not _alive(p) for p in processes]
        if all(gone) or time.monotonic() > deadline:
            return gone
        time.sleep(0.02)


def kill_marked(run_id: str, var: str, timeout: float = 10.0) -> list[MarkedProcess]:
    """Kill every process marked ``var`` = ``run_id`` until none is left (a parent may start
    another while it dies) or ``timeout`` s pass; returns the processes it found."""
    found: dict[tuple[int, int], MarkedProcess] = {}
    deadline = time.monotonic() + timeout
    while (left := marked_processes(run_id, var)) and time.monotonic() < deadline:
        found.update((p.key, p) for p in left)
        kill_processes(left, timeout=max(0.0, deadline - time.monotonic()))
    return list(found.values())


@contextlib.contextmanager
def processes_killed_at_exit(var: str = SCOPE_VAR) -> Iterator[str]:
    """Processes started inside the block inherit ``var`` naming a fresh id (yielded); those
    still running at its end are killed with their groups (``kill_marked``)."""
    scope_id = uuid.uuid4().hex[:12]
    previous = os.environ.get(var)
    os.environ[var] = f"{previous}:{scope_id}" if previous else scope_id
    try:
        yield scope_id
    finally:
        if previous is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = previous
        kill_marked(scope_id, var)


def pytest_sessionstart(session: pytest.Session) -> None:
    run_id = uuid.uuid4().hex[:12]
    stash = session.config.stash
    stash[_run_id] = run_id
    stash[_previous] = os.environ.get(MARK_VAR)
    stash[_first_seen] = {}
    stash[_leftovers] = []
    inherited = os.environ.get(MARK_VAR)
    os.environ[MARK_VAR] = f"{inherited}:{run_id}" if inherited else run_id
    # Replicas and hooks get an explicit environment; let the markers through on purpose.
    passed = os.environ.get("SLUICE_PASS_ENV", "")
    if "SLUICEGATE_TEST_*" not in passed.split():
        os.environ["SLUICE_PASS_ENV"] = f"{passed} SLUICEGATE_TEST_*".strip()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None]:
    try:
        return (yield)
    finally:
        stash = item.config.stash
        if _run_id in stash:
            first_seen = stash[_first_seen]
            for p in marked_processes(stash[_run_id]):
                first_seen.setdefault(p.key, item.nodeid)


@pytest.hookimpl(trylast=True)  # after the runner tore down session-scoped fixtures
def pytest_sessionfinish(session: pytest.Session) -> None:
    stash = session.config.stash
    if _run_id not in stash:
        return
    left = marked_processes(stash[_run_id])
    if left:
        gone = kill_processes(left)
        first_seen = stash[_first_seen]
        stash[_leftovers] = [Leftover(p, first_seen.get(p.key), g)
                             for p, g in zip(left, gone, strict=True)]  # fmt: skip
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if session.config.pluginmanager.get_plugin("terminalreporter") is None:
            print("\n".join(report(stash[_leftovers])), file=sys.stderr)
    previous = stash[_previous]
    if previous is None:
        os.environ.pop(MARK_VAR, None)
    else:
        os.environ[MARK_VAR] = previous


def report(leftovers: list[Leftover]) -> list[str]:
    """The lines that name each leftover process, grouped by the test that left it."""
    lines = [f"{len(leftovers)} process(es) started by this test run were still running at "
             "its end; the run fails. Fix the test or fixture that started them:"]  # fmt: skip
    by_test: dict[str | None, list[Leftover]] = {}
    for leftover in leftovers:
        by_test.setdefault(leftover.started_by, []).append(leftover)
    for test, items in by_test.items():
        lines.append(
            f"  first seen after {test}:"
            if test is not None
            else "  not seen after any test (started during collection, or at the end):"
        )
        for x in items:
            p = x.process
            fate = "killed" if x.killed else "STILL RUNNING after SIGKILL"
            lines.append(f"    pid {p.pid} (ppid {p.ppid}, pgrp {p.pgrp}, {fate}): {p.cmdline}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    leftovers = terminalreporter.config.stash.get(_leftovers, [])
    if leftovers:
        terminalreporter.write_sep("=", "processes left running by the tests", red=True)
        for line in report(leftovers):
            terminalreporter.write_line(line)
