"""Processes for the benchmark: start, wait until serving, pin to CPUs, always stop."""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat (this kernel has no /proc/PID/task/TID/children)."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." - comm may contain spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 2:
            out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def set_affinity(pid: int, cpus: set[int]) -> int:
    """Pin every thread of ``pid`` and its descendants to ``cpus`` (what ``taskset -a -p`` does).

    Returns the number of threads pinned.
    """
    n = 0
    for p in process_tree(pid):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)
                n += 1
    return n


def http_get(
    port: int, path: str = "/", headers: Mapping[str, str] | None = None, timeout: float = 2.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection to 127.0.0.1; header names are lower-cased."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        hdrs: dict[str, str] = {}
        for k, v in resp.getheaders():
            key = k.lower()
            hdrs[key] = f"{hdrs[key]}, {v}" if key in hdrs and key != "set-cookie" else v
        return resp.status, hdrs, data
    finally:
        conn.close()


@dataclass
class Proc:
    name: str
    cmd: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 1500) -> str:
        self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Procs:
    """Every process the benchmark starts; ``stop_all`` ends them (their own process groups)."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop_all
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # own process group: stop_all ends workers too
        )
        proc = Proc(name, list(cmd), popen, log_path, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 5.0) -> None:
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout)
        # Workers left behind in the group (a master that died first, say).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.log.close()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self.procs.clear()


def wait_serving(
    proc: Proc, port: int, timeout: float = 20.0, headers: Mapping[str, str] | None = None
) -> str | None:
    """Wait until GET / on ``port`` answers 200; None when it does, else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            return f"exited with code {proc.popen.returncode}"
        try:
            status, _, _ = http_get(port, headers=headers, timeout=1.0)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return None
            last = f"status {status}"
        time.sleep(0.2)
    return f"not serving after {timeout:g}s ({last})"


@contextlib.contextmanager
def managed(log_dir: Path) -> Iterator[Procs]:
    """Processes are stopped on any exit: normal, exception, Ctrl-C or SIGTERM/SIGHUP."""
    procs = Procs(log_dir)

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    old = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield procs
    finally:
        # Ignore further signals while cleaning up, so nothing is left running.
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        try:
            procs.stop_all()
        finally:
            for s, h in old.items():
                signal.signal(s, h)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time in clock ticks: all CPUs busy (user+nice+system), steal, our process trees."""

    when: float
    busy: int
    steal: int
    ours: int
    children: float  # seconds of waited-for children (wrk) from getrusage


def _proc_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def cpu_snapshot(roots: Sequence[int]) -> CpuSnapshot:
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system = int(parts[1]), int(parts[2]), int(parts[3])
    steal = int(parts[8]) if len(parts) > 8 else 0
    ours = 0
    children = _children_map()
    for root in roots:
        todo = [root]
        while todo:
            p = todo.pop()
            ours += _proc_ticks(p)
            todo.extend(children.get(p, []))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(
        time.monotonic(), user + nice + system, steal, ours, ru.ru_utime + ru.ru_stime
    )


def foreign_cpu(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU used by processes that are not ours (and steal) between two snapshots, in cores.

    Softirq time (loopback TCP) is left out on both sides. ``other`` near 0 means nothing else
    was competing; above ~0.1 core the run was disturbed by something else on the machine.
    """
    hz = os.sysconf("SC_CLK_TCK")
    wall = max(after.when - before.when, 1e-6)
    busy = (after.busy - before.busy) / hz
    ours = (after.ours - before.ours) / hz + (after.children - before.children)
    return {
        "other_cores": max(busy - ours, 0.0) / wall,
        "steal_cores": (after.steal - before.steal) / hz / wall,
    }
