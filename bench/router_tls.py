"""Benchmark the router's HTTPS listeners against its plain HTTP and against HAProxy 2.6
terminating TLS, in the same run.

Run from the repository root:  .venv/bin/python bench/router_tls.py [--runs 3] [--duration 5]

Same set-up as bench/router.py (its "pinned" layout, "new" clients): backend nginx and wrk on
core A, the proxy under test alone on core B; 90/10 split with stickiness; HAProxy with one
thread. Two traffic shapes:
  keep-alive   wrk -c50 on kept-alive connections: requests/s (TLS costs only record crypto)
  handshake    wrk -c20 with "Connection: close": every request is a new TCP connection and
               a new full TLS handshake (wrk does not resume sessions), so req/s = handshakes/s
               on one core of proxy
Certificates: an EC P-256 server certificate from sluicegate's dev CA (sluice certs dev).
Prints a markdown table (median of --runs) and the ratios to HAProxy; never asserts. Besides
req/s it reports requests per CPU-second of the proxy (its process tree's utime+stime during
the run): on a shared 2-core machine that is the steadier number, and in the handshake
shape it is handshakes per CPU-second. "foreign load" is CPU used meanwhile by processes the
benchmark did not start (above ~0.1 core the run was disturbed).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _configs
import _procs
import _wrk

REPO = Path(__file__).resolve().parent.parent
STICKY_SECRET = "sluicegate-bench-sticky-secret-0123456789abcdef"


@dataclass
class Row:
    name: str  # haproxy-1t / sluice-1p
    tls: bool
    shape: str  # keep-alive / handshake
    results: list[_wrk.WrkResult] = field(default_factory=list)
    per_cpu: list[float] = field(default_factory=list)  # requests per proxy CPU-second
    others: list[float] = field(default_factory=list)  # cores used by foreign processes

    @property
    def label(self) -> str:
        return f"{self.name} {'https' if self.tls else 'http'}"

    def median(self) -> float:
        good = [r.rps for r in self.results if r.ok]
        return statistics.median(good) if good else 0.0

    def errors(self) -> int:
        return sum(r.errors for r in self.results)

    def median_per_cpu(self) -> float:
        return statistics.median(self.per_cpu) if self.per_cpu else 0.0


def _proxy_ticks(pid: int) -> int:
    """CPU clock ticks used so far by the process tree of ``pid`` (the proxy and workers)."""
    return sum(_procs._proc_ticks(p) for p in _procs.process_tree(pid))


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _wait_tls(port: int, timeout: float = 40.0) -> str | None:
    """None once an HTTPS GET / answers; else why not."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only checks that it serves; wrk does not verify either
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=1)
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return None
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.2)
    return f"not serving after {timeout:g}s ({last})"


def _sluice_config(port: int, admin: int, blue: int, green: int, cert: Path | None) -> str:
    text = _configs.sluicegate(port, admin, blue, green)
    if cert is None:
        return text
    tls = f"    tls:\n      certificates: [{{cert: {cert}, key: {cert.with_suffix('.key')}}}]\n"
    return text.replace(f"    port: {port}\n", f"    port: {port}\n{tls}", 1)


def _haproxy_config(
    tmp: Path, name: str, port: int, blue: int, green: int, pem: Path | None
) -> str:
    text = _configs.haproxy(tmp, name, port, blue, green, 1)
    if pem is None:
        return text
    bind = f"bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1 ssl-min-ver TLSv1.2"
    return text.replace(f"bind 127.0.0.1:{port}", bind, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per row (median reported)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs (backend + wrk on one, the proxy on the other)")
    core_a, core_b = cpus[0], cpus[1]
    sys.path.insert(0, str(REPO / "src"))
    from sluicegate._devcerts import make_dev_certificates

    tmp = Path(tempfile.mkdtemp(prefix="sluice-bench-tls-"))
    made = make_dev_certificates(["localhost", "127.0.0.1"], datetime.datetime.now(datetime.UTC))
    cert = tmp / "server.pem"
    cert.write_bytes(made.cert)
    cert.with_suffix(".key").write_bytes(made.key)
    combined = tmp / "haproxy.pem"  # HAProxy wants certificate and key in one file
    combined.write_bytes(made.cert + made.key)
    blue, green, *ports = _procs.free_ports(10)  # 4 proxies, 4 admin ports (2 used)
    rows = [
        Row(name, tls, shape)
        for shape in ("keep-alive", "handshake")
        for name in ("haproxy-1t", "sluice-1p")
        for tls in (False, True)
    ]
    with _procs.managed(tmp) as procs:
        conf = tmp / "backend-nginx.conf"
        conf.write_text(_configs.backend_nginx(tmp, blue, green))
        backend = procs.start(
            "backend-nginx",
            ["nginx", "-p", f"{tmp}/", "-e", str(tmp / "backend-error.log"), "-c", str(conf)],
        )
        for port in (blue, green):
            if why := _procs.wait_serving(backend, port, timeout=15):
                raise SystemExit(f"backend nginx on :{port} {why}")
        _procs.set_affinity(backend.pid, {core_a})
        servers: dict[tuple[str, bool], tuple[_procs.Proc, int]] = {}
        for i, (name, tls) in enumerate(
            [("haproxy-1t", False), ("haproxy-1t", True), ("sluice-1p", False), ("sluice-1p", True)]
        ):
            port = ports[i]
            label = f"{name}-{'https' if tls else 'http'}"
            if name == "haproxy-1t":
                cfg = tmp / f"{label}.cfg"
                cfg.write_text(
                    _haproxy_config(tmp, label, port, blue, green, combined if tls else None)
                )
                proc = procs.start(label, ["haproxy", "-f", str(cfg), "-db"])
            else:
                cfg = tmp / f"{label}.yaml"
                cfg.write_text(
                    _sluice_config(port, ports[4 + i], blue, green, cert if tls else None)
                )
                proc = procs.start(
                    label,
                    [_python(), "-m", "sluicegate", "router", "--config", str(cfg), "--insecure"],
                    env={"SLUICE_STICKY_SECRET": STICKY_SECRET, "PYTHONUNBUFFERED": "1"},
                    cwd=tmp,
                )
            why = _wait_tls(port) if tls else _procs.wait_serving(proc, port, timeout=40)
            if why:
                raise SystemExit(f"{label}: {why}\n{proc.log_tail()}")
            _procs.set_affinity(proc.pid, {core_b})
            servers[(name, tls)] = (proc, port)
            print(f"  {label}: serving on 127.0.0.1:{port} (pid {proc.pid})", flush=True)
        for run in range(args.runs):
            for row in rows:
                proc, port = servers[(row.name, row.tls)]
                _procs.set_affinity(proc.pid, {core_b})
                url = f"{'https' if row.tls else 'http'}://127.0.0.1:{port}/"
                ticks = _proxy_ticks(proc.pid)
                before = _procs.cpu_snapshot([p.pid for p in procs.procs])
                res = _wrk.run(
                    url,
                    duration=args.duration,
                    connections=50 if row.shape == "keep-alive" else 20,
                    cpus=str(core_a),
                    close=row.shape == "handshake",
                )
                after = _procs.cpu_snapshot([p.pid for p in procs.procs])
                cpu = (_proxy_ticks(proc.pid) - ticks) / os.sysconf("SC_CLK_TCK")
                row.results.append(res)
                if res.ok and cpu > 0:
                    row.per_cpu.append(res.requests / cpu)
                row.others.append(_procs.foreign_cpu(before, after)["other_cores"])
                status = f"{res.rps:,.0f} req/s" if res.ok else f"FAILED {res.error}"
                status += f", {row.per_cpu[-1]:,.0f} per proxy CPU-s" if row.per_cpu else ""
                print(f"  run {run + 1}: {row.shape:10} {row.label:17} {status}", flush=True)
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.processor() or 'cpu'}),"
        f" Python {platform.python_version()}, {ssl.OPENSSL_VERSION}; median of {args.runs}"
        f" runs x {args.duration:g}s; proxy alone on CPU {core_b}, backend + wrk on CPU {core_a}"
    )
    print()
    print(
        "| traffic | proxy | scheme | req/s (median) | vs HAProxy | req per proxy CPU-s (median)"
        " | vs HAProxy | errors | foreign load (cores, max) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        same = (row.tls, row.shape)
        base = next(r for r in rows if r.name == "haproxy-1t" and (r.tls, r.shape) == same)
        ratio = row.median() / base.median() if base.median() else 0.0
        base_cpu = base.median_per_cpu()
        cpu_ratio = row.median_per_cpu() / base_cpu if base_cpu else 0.0
        print(
            f"| {row.shape} | {row.name} | {'https' if row.tls else 'http'} |"
            f" {row.median():,.0f} | {ratio:.2f}x | {row.median_per_cpu():,.0f} |"
            f" {cpu_ratio:.2f}x | {row.errors()} | {max(row.others, default=0):.2f} |"
        )
    print()
    for name in ("haproxy-1t", "sluice-1p"):
        for shape in ("keep-alive", "handshake"):
            plain = next(r for r in rows if (r.name, r.tls, r.shape) == (name, False, shape))
            tls = next(r for r in rows if (r.name, r.tls, r.shape) == (name, True, shape))
            if plain.median():
                print(f"{name} {shape}: https / http = {tls.median() / plain.median():.2f}")


if __name__ == "__main__":
    main()
