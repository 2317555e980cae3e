"""The supervisor's small parts: /proc/PID/stat parsing, liveness, ports, log files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sluicegate.compute import _logfiles, _ports, _proc
from tests.compute.conftest import MARK, MARK_VAR


def test_stat_survives_a_process_name_with_spaces_and_parens(tmp_path: Path) -> None:
    odd = tmp_path / "a (b) c"
    odd.symlink_to(sys.executable)
    env = {**os.environ, MARK_VAR: MARK}
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"], env=env,
                             start_new_session=True)  # fmt: skip
    try:
        info = _proc.stat(child.pid)
        # "D": a fresh process may still be loading from disk on a busy machine.
        assert info is not None and info.pgrp == child.pid and info.state in "RSD"
        assert _proc.is_alive(child.pid, info.start_time) == (True, None)
        assert _proc.is_same_process(child.pid, info.start_time)
        assert not _proc.is_same_process(child.pid, info.start_time + 1)
        child.kill()
        child.wait()
        assert _proc.stat(child.pid) is None
        assert _proc.is_alive(child.pid, info.start_time) == (False, _proc.Exit())
    finally:
        child.kill()
        child.wait()


def test_is_alive_reaps_our_children_with_their_status() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    info = _proc.stat(child.pid)
    assert info is not None
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert _proc.is_alive(child.pid, info.start_time) == (False, _proc.Exit(code=7))
    assert _proc.describe_exit(_proc.Exit(signal=9)) == "killed by SIGKILL"
    child.returncode = 7  # reaped above; keep Popen from looking for it


def test_ports_are_distinct_and_avoid_the_given_ones() -> None:
    first = _ports.allocate(5)
    assert len(set(first)) == 5
    assert not set(_ports.allocate(5, avoid=first)) & set(first)
    assert _ports.is_free(first[0])


def test_rotation_keeps_the_given_number_of_backups(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    for round_ in range(4):
        log.write_text("".join(f"r{round_} line {i}\n" for i in range(100)))
        assert _logfiles.rotate_if_large(log, max_bytes=500, backups=2)
        assert log.stat().st_size == 0
    # .rotated: where the live file begins in the replica's output (for following it)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.log",
        "0.log.1",
        "0.log.2",
        "0.log.rotated",
    ]
    for private in ("0.log.1", "0.log.2", "0.log.rotated"):  # as private as the log itself
        assert (tmp_path / private).stat().st_mode & 0o777 == 0o600, private
    assert (tmp_path / "0.log.1").read_text().startswith("r3 line 0")
    assert (tmp_path / "0.log.2").read_text().startswith("r2 line 0")
    log.write_text("new 1\nnew 2\n")
    assert not _logfiles.rotate_if_large(log, max_bytes=500, backups=2)
    assert _logfiles.tail_lines(log, 3) == ["r3 line 99", "new 1", "new 2"]
    assert _logfiles.tail_lines(tmp_path / "missing.log", 3) == []
