"""Run wrk (closed loop, ``--latency``) and parse its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PCT = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_REQS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_SOCK = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.M)


@dataclass
class WrkResult:
    ok: bool
    rps: float = 0.0
    requests: int = 0
    p50_ms: float | None = None
    p75_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    error: str = ""
    # CPU used meanwhile by processes the benchmark did not start, and VM steal (in cores).
    other_cores: float | None = None
    steal_cores: float | None = None
    command: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = self.errors
        return d


def parse(text: str) -> WrkResult:
    """Parse wrk's stdout; ``ok`` is False when the report has no Requests/sec line."""
    rps = _RPS.search(text)
    if not rps:
        return WrkResult(ok=False, error="no Requests/sec in wrk output", output=text)
    res = WrkResult(ok=True, rps=float(rps.group(1)), output=text)
    pcts = {int(p): float(v) * _UNITS_MS[u] for p, v, u in _PCT.findall(text)}
    res.p50_ms, res.p75_ms = pcts.get(50), pcts.get(75)
    res.p90_ms, res.p99_ms = pcts.get(90), pcts.get(99)
    reqs = _REQS.search(text)
    if reqs:
        res.requests = int(reqs.group(1))
    sock = _SOCK.search(text)
    if sock:
        keys = ("connect", "read", "write", "timeout")
        res.socket_errors = {k: int(v) for k, v in zip(keys, sock.groups(), strict=True)}
    non2xx = _NON2XX.search(text)
    if non2xx:
        res.non2xx = int(non2xx.group(1))
    return res


def run(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    cookie: str | None = None,
    cpus: str | None = None,
    grace: float = 30.0,
    close: bool = False,
) -> WrkResult:
    """One wrk run; ``cpus`` pins it with taskset; killed after duration + ``grace`` seconds."""
    cmd: list[str] = ["taskset", "-c", cpus] if cpus else []
    cmd += [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
    ]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    if close:  # a new connection (and TLS handshake) for every request
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=duration + grace,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        return WrkResult(
            ok=False, error=f"wrk timed out after {duration + grace:g}s", command=cmd, output=out
        )
    res = parse(proc.stdout)
    res.command = cmd
    if proc.returncode != 0:
        res.ok = False
        res.error = f"wrk exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    elif not res.ok and proc.stderr.strip():
        res.error += f"; stderr: {proc.stderr.strip()[-300:]}"
    return res
