"""Benchmark Sluicegate's router against the backend directly, HAProxy 2.6 and nginx.

Run from the repository root:  .venv/bin/python bench/router.py [--quick] [options]
See --help for the layouts, traffic modes and the targets from the issue. Prints a markdown
table and the targets; writes the raw results to bench/out/router-<timestamp>.json.
It never asserts: the numbers are for people (and for ratios measured in one run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _configs
import _procs
import _wrk

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
LAYOUTS = ("pinned", "unpinned", "L2")
MODES = ("new", "sticky")
STICKY_SECRET = "sluicegate-bench-sticky-secret-0123456789abcdef"

# Targets from the issue (all features on).
TARGET_1P_RATIO = 0.55
TARGET_2W_RATIO = 0.75
TARGET_P99_MS = 2.0
TARGET_P99_CONNECTIONS = 50
TARGET_METRICS_COST = 0.10
# A run during which processes we did not start used more than this many cores is "noisy".
NOISY_CORES = 0.10

HELP_EPILOG = f"""\
configs (names for --only; a prefix such as "haproxy" or "sluicegate" selects all its rows):
  direct               wrk -> backend nginx "blue" listener (the floor)
  haproxy-1t           HAProxy 2.6, nbthread 1: one backend, blue w90 / green w10,
                       balance roundrobin, cookie SRV insert indirect nocache, http-reuse always
  haproxy-2t           the same with nbthread 2
  nginx-1w, nginx-2w   nginx 1.22 proxy, 1 / 2 workers: split_clients on $request_id (10 %
                       green) + map $cookie_TG (sticky) + Set-Cookie TG for new clients
  sluice-1p            python -m sluicegate router, 1 process: 90/10, stickiness, metrics on
  sluice-1p-nometrics  the same with SLUICE_ROUTER_METRICS=0 (per-second metrics off)
  sluice-2w            the same as sluice-1p with --workers 2
  Backends: one nginx master + 1 worker, listeners "blue" and "green", return 200 with a
  {_configs.BODY_LEN}-byte body and an {_configs.BACKEND_HEADER} header, keepalive_requests 1000000.

layouts (core A / core B = the first two CPUs this process may use):
  pinned    backend + wrk on core A, the proxy under test alone on core B:
            "what does one core of proxy buy". p99 here is wrk/backend jitter on core A.
  unpinned  backend, wrk and proxy all float over both cores (tail-latency reference).
  L2        backend pinned to core A, wrk and the proxy float over both cores
            (the layout for 2-thread / 2-worker rows).
  default   (if --layout is not given) the anchor's plan: 1-process rows in pinned,
            2-thread/2-worker rows in L2, plus the HAProxy and Sluicegate rows in
            unpinned (new clients only) for the p99 target.
  Processes are re-pinned before every run (sched_setaffinity on every thread of the
  process tree, like taskset -a -p); wrk is started under taskset.

traffic modes:
  new       no cookie: every request is a first visit, the proxy picks 90/10 and sends Set-Cookie
  sticky    every request carries the group cookie pinned to green (HAProxy SRV=green,
            nginx TG=green, Sluicegate: a signed cookie taken from a real response)

targets (from the issue; all features on; ratios are to HAProxy measured in the same run):
  1. sluice-1p  >= {TARGET_1P_RATIO} x haproxy-1t req/s   (same layout and mode; pinned)
  2. sluice-2w  >= {TARGET_2W_RATIO} x haproxy-2t req/s   (same layout and mode; L2)
  3. p99 <= {TARGET_P99_MS:g} ms at {TARGET_P99_CONNECTIONS} connections, unpinned (sluice rows)
  4. per-second metrics cost <= {TARGET_METRICS_COST:.0%}: 1 - sluice-1p / sluice-1p-nometrics
  The report says met / NOT met for each; nothing fails.

shared machine: the "other CPU" column is the CPU that processes this benchmark did not start
  used during each run (> {NOISY_CORES:g} core is flagged "!"). --wait-quiet and --retry-noisy help
  when other jobs come and go; the hypervisor's own contention is not visible there.

examples:
  .venv/bin/python bench/router.py --quick --only direct,haproxy,nginx
  .venv/bin/python bench/router.py                        # default plan, 3 x 10 s
  .venv/bin/python bench/router.py --layout L2 --runs 5 --only haproxy,sluicegate
  .venv/bin/python bench/router.py --wait-quiet 30s --retry-noisy 2   # on a busy machine
"""


@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # direct | haproxy | nginx | sluice
    procs: int  # threads / workers / processes
    label: str
    ref: str  # the HAProxy row it is compared with
    metrics: bool = True


CONFIGS: tuple[Config, ...] = (
    Config("direct", "direct", 1, "backend directly", "haproxy-1t"),
    Config("haproxy-1t", "haproxy", 1, "HAProxy 2.6, 1 thread", "haproxy-1t"),
    Config("nginx-1w", "nginx", 1, "nginx 1.22, 1 worker", "haproxy-1t"),
    Config("sluice-1p", "sluice", 1, "Sluicegate, 1 process", "haproxy-1t"),
    Config(
        "sluice-1p-nometrics",
        "sluice",
        1,
        "Sluicegate, 1 process, metrics off",
        "haproxy-1t",
        metrics=False,
    ),
    Config("haproxy-2t", "haproxy", 2, "HAProxy 2.6, 2 threads", "haproxy-2t"),
    Config("nginx-2w", "nginx", 2, "nginx 1.22, 2 workers", "haproxy-2t"),
    Config("sluice-2w", "sluice", 2, "Sluicegate, --workers 2", "haproxy-2t"),
)
BY_NAME = {c.name: c for c in CONFIGS}

# The default plan (layout, config names, modes): the anchor's layouts plus unpinned for p99.
DEFAULT_PLAN: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("pinned", ("direct", "haproxy-1t", "nginx-1w", "sluice-1p", "sluice-1p-nometrics"), MODES),
    ("L2", ("direct", "haproxy-2t", "nginx-2w", "sluice-2w"), MODES),
    ("unpinned", ("direct", "haproxy-1t", "haproxy-2t", "sluice-1p", "sluice-2w"), ("new",)),
)


@dataclass(frozen=True)
class Cell:
    layout: str
    config: str
    mode: str  # "new" | "sticky" | "-" (direct)


@dataclass
class Target:
    """A started config: where it listens and whether it can be measured."""

    config: Config
    port: int = 0
    available: bool = False
    reason: str = ""
    proc: _procs.Proc | None = None
    sticky_cookie: str | None = None
    split: dict[str, int] = field(default_factory=dict)
    sticky_check: dict[str, int] = field(default_factory=dict)
    admin_port: int = 0
    metrics_check: str = ""
    metrics_counting: bool | None = None  # did admin /v1/metrics count requests?


@dataclass
class Cpus:
    a: int
    b: int

    @property
    def both(self) -> set[int]:
        return {self.a, self.b}

    def backend(self, layout: str) -> set[int]:
        return self.both if layout == "unpinned" else {self.a}

    def proxy(self, layout: str) -> set[int]:
        return {self.b} if layout == "pinned" else self.both

    def wrk(self, layout: str) -> str:
        return str(self.a) if layout == "pinned" else ",".join(map(str, sorted(self.both)))


# ---------------------------------------------------------------------------------------------
# arguments


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*([\d.]+)\s*(ms|s|m)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 10s, 500ms, 1m)")
    value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
    if value < 1:
        raise argparse.ArgumentTypeError("wrk needs a duration of at least 1s")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/router.py",
        description=(
            "wrk against the backend directly, Sluicegate's router (90/10 + stickiness + "
            "metrics), HAProxy 2.6 (cookie insert, http-reuse) and nginx, in the same run "
            "and layout. Prints req/s, p50, p99 and the ratio to HAProxy, and the targets."
        ),
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--layout",
        default="default",
        help="pinned | unpinned | L2 | default, or a comma list of layouts (default: default)",
    )
    p.add_argument(
        "--duration", type=parse_duration, default=10.0, help="wrk duration per run (default 10s)"
    )
    p.add_argument(
        "--runs",
        type=int,
        default=3,
        help="interleaved runs per row; the table shows the median (default 3)",
    )
    p.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument(
        "--only",
        default="",
        help="comma list of configs or prefixes: direct,haproxy,nginx,sluicegate,...",
    )
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma list of traffic modes: new,sticky (default both)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke test: 1 run x 3s, no warm-up beyond 1s"
    )
    p.add_argument(
        "--warmup",
        type=parse_duration,
        default=2.0,
        help="one wrk warm-up per config before measuring (default 2s)",
    )
    p.add_argument(
        "--python",
        default="",
        help="interpreter for the Sluicegate router (default: .venv/bin/python)",
    )
    p.add_argument(
        "--keep-tmp", action="store_true", help="keep the temp dir with configs and logs"
    )
    p.add_argument(
        "--wait-quiet",
        type=parse_duration,
        default=0.0,
        metavar="SECONDS",
        help=(
            "before each run, wait up to this long for a 1s window in which other processes "
            f"use under {NOISY_CORES:g} core (for a shared machine; default: do not wait)"
        ),
    )
    p.add_argument(
        "--retry-noisy",
        type=int,
        default=0,
        metavar="N",
        help=(
            f"repeat a run up to N times while other processes used over {NOISY_CORES:g} core "
            "during it; the least disturbed attempt counts (default 0)"
        ),
    )
    p.add_argument("--no-json", action="store_true", help="do not write bench/out/*.json")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def select_configs(only: str) -> list[str]:
    if not only.strip():
        return [c.name for c in CONFIGS]
    picked: list[str] = []
    for raw in only.split(","):
        word = raw.strip().lower()
        if not word:
            continue
        if word in ("sluicegate", "sluice", "router"):
            word = "sluice"
        match = [word] if word in BY_NAME else []
        if not match:
            match = [c.name for c in CONFIGS if c.name.startswith(word + "-")]
        if not match:
            match = [c.name for c in CONFIGS if c.name.startswith(word)]
        if not match:
            sys.exit(f"--only: unknown config {raw!r} (known: {', '.join(BY_NAME)})")
        picked += [m for m in match if m not in picked]
    return [c.name for c in CONFIGS if c.name in picked]


def build_plan(layout_arg: str, names: list[str], modes: list[str]) -> list[Cell]:
    def cells(layout: str, cfgs: Sequence[str], cell_modes: Sequence[str]) -> list[Cell]:
        out: list[Cell] = []
        for name in cfgs:
            if name not in names:
                continue
            if name == "direct":
                out.append(Cell(layout, name, "-"))
            else:
                out += [Cell(layout, name, m) for m in cell_modes if m in modes]
        return out

    if layout_arg == "default":
        plan: list[Cell] = []
        for layout, cfgs, cell_modes in DEFAULT_PLAN:
            plan += cells(layout, cfgs, cell_modes)
        return plan
    plan = []
    for raw in layout_arg.split(","):
        found = {x.lower(): x for x in LAYOUTS}.get(raw.strip().lower())
        if found is None:
            sys.exit(f"--layout: unknown layout {raw!r} (pinned, unpinned, L2, default)")
        plan += cells(found, names, modes)
    return plan


# ---------------------------------------------------------------------------------------------
# environment


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def pick_cpus() -> tuple[Cpus, str]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        note = "" if len(cpus) == 2 else f" (of {len(cpus)}; the others are not used)"
        return Cpus(cpus[0], cpus[1]), note
    return Cpus(cpus[0], cpus[0]), " (only ONE cpu: layouts are all the same)"


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def machine_info(python: str) -> dict[str, str]:
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus_online": str(os.cpu_count()),
        "haproxy": _version(["haproxy", "-v"]),
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "-v"]),
        "router_python": _version(
            [
                python,
                "-c",
                "import sys, uvloop, httptools; print(sys.version.split()[0],"
                " 'uvloop', uvloop.__version__, 'httptools', httptools.__version__)",
            ]
        ),
        "bench_python": platform.python_version(),
    }


def router_python(arg: str) -> str:
    if arg:
        return arg
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# ---------------------------------------------------------------------------------------------
# starting everything


def start_backend(procs: _procs.Procs, tmp: Path, blue: int, green: int) -> _procs.Proc:
    conf = tmp / "backend-nginx.conf"
    conf.write_text(_configs.backend_nginx(tmp, blue, green))
    proc = procs.start(
        "backend-nginx",
        ["nginx", "-p", f"{tmp}/", "-e", str(tmp / "backend-error.log"), "-c", str(conf)],
    )
    for port in (blue, green):
        why = _procs.wait_serving(proc, port, timeout=15)
        if why:
            raise SystemExit(f"backend nginx on :{port} {why}\n{proc.log_tail()}")
    return proc


def start_target(
    procs: _procs.Procs,
    tmp: Path,
    target: Target,
    blue: int,
    green: int,
    admin_port: int,
    python: str,
) -> None:
    cfg = target.config
    name = cfg.name
    if cfg.kind == "haproxy":
        if not shutil.which("haproxy"):
            target.reason = "haproxy not installed"
            return
        conf = tmp / f"{name}.cfg"
        conf.write_text(_configs.haproxy(tmp, name, target.port, blue, green, cfg.procs))
        target.proc = procs.start(name, ["haproxy", "-f", str(conf), "-db"])
        timeout = 15.0
    elif cfg.kind == "nginx":
        conf = tmp / f"{name}.conf"
        conf.write_text(_configs.nginx_proxy(tmp, name, target.port, blue, green, cfg.procs))
        target.proc = procs.start(
            name,
            ["nginx", "-p", f"{tmp}/", "-e", str(tmp / f"{name}-error.log"), "-c", str(conf)],
        )
        timeout = 15.0
    else:  # sluice
        conf = tmp / f"{name}.yaml"
        conf.write_text(_configs.sluicegate(target.port, admin_port, blue, green))
        cmd = [python, "-m", "sluicegate", "router", "--config", str(conf), "--insecure"]
        if cfg.procs > 1:
            cmd += ["--workers", str(cfg.procs)]
        env = {
            "SLUICE_STICKY_SECRET": STICKY_SECRET,
            "SLUICE_ROUTER_METRICS": "1" if cfg.metrics else "0",
            "PYTHONUNBUFFERED": "1",
        }
        target.proc = procs.start(name, cmd, env=env, cwd=tmp)
        timeout = 40.0  # health checks may have to pass first
    why = _procs.wait_serving(target.proc, target.port, timeout=timeout)
    if why:
        tail = target.proc.log_tail(800).strip()
        target.reason = why + (f" | log: {tail.splitlines()[-1][:200]}" if tail else "")
        print(f"  {name}: NOT available: {why}")
        if tail:
            print("    " + "\n    ".join(tail.splitlines()[-12:]))
        procs.stop(target.proc)
        return
    target.available = True
    print(f"  {name}: serving on 127.0.0.1:{target.port} (pid {target.proc.pid})")


def which_group(headers: dict[str, str], body: bytes) -> str:
    tag = headers.get(_configs.BACKEND_HEADER.lower(), "")
    if tag:
        return tag
    m = re.search(rb"hello from (\w+)", body)
    return m.group(1).decode() if m else "?"


def check_split(target: Target, n: int = 200) -> None:
    """n requests without a cookie -> counts per group, and how many got a Set-Cookie."""
    counts: dict[str, int] = {}
    cookies = 0
    sticky_candidate: str | None = None
    for _ in range(n):
        try:
            status, headers, body = _procs.http_get(target.port)
        except OSError as exc:
            counts[f"error:{type(exc).__name__}"] = counts.get(f"error:{type(exc).__name__}", 0) + 1
            continue
        group = which_group(headers, body) if status == 200 else f"status {status}"
        counts[group] = counts.get(group, 0) + 1
        set_cookie = headers.get("set-cookie")
        if set_cookie:
            cookies += 1
            if group == "green" and sticky_candidate is None:
                sticky_candidate = set_cookie.split(";", 1)[0].strip()
    target.split = dict(sorted(counts.items()))
    target.split["set-cookie"] = cookies
    kind = target.config.kind
    if kind == "haproxy":
        target.sticky_cookie = f"{_configs.HAPROXY_COOKIE}=green"
    elif kind == "nginx":
        target.sticky_cookie = f"{_configs.NGINX_COOKIE}=green"
    elif kind == "sluice":
        target.sticky_cookie = sticky_candidate or find_sluice_cookie(target.port)


def check_metrics(target: Target) -> str:
    """What the router's per-second metrics counted (after the split check and warm-up)."""
    try:
        status, _, body = _procs.http_get(target.admin_port, "/v1/metrics?window=60", timeout=5)
        doc = json.loads(body)
        if status != 200:
            return f"admin /v1/metrics answered {status}"
        per_group: dict[str, int] = {}
        for series in doc.get("series", []):
            group = str(series.get("target_group"))
            per_group[group] = per_group.get(group, 0) + int(series.get("requests") or 0)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return f"admin /v1/metrics unreadable: {type(exc).__name__}: {exc}"
    target.metrics_counting = any(per_group.values())
    counted = ", ".join(f"{g} {n:,}" for g, n in sorted(per_group.items()) if n) or "nothing"
    text = f"per-second metrics, last 60 s (admin /v1/metrics): {counted}"
    if not target.config.metrics and any(per_group.values()):
        text += (
            " -- WARNING: SLUICE_ROUTER_METRICS=0 but the router still counts, so the"
            " metrics-cost target compares two routers with metrics on"
        )
    return text


def find_sluice_cookie(port: int, tries: int = 400) -> str | None:
    """A valid signed cookie for green: ask the router until it picks green for a new client."""
    for _ in range(tries):
        try:
            status, headers, body = _procs.http_get(port)
        except OSError:
            continue
        set_cookie = headers.get("set-cookie")
        if status == 200 and set_cookie and which_group(headers, body) == "green":
            return set_cookie.split(";", 1)[0].strip()
    return None


def check_sticky(target: Target, n: int = 50) -> None:
    if not target.sticky_cookie:
        return
    counts: dict[str, int] = {}
    for _ in range(n):
        try:
            status, headers, body = _procs.http_get(
                target.port, headers={"Cookie": target.sticky_cookie}
            )
        except OSError as exc:
            key = f"error:{type(exc).__name__}"
            counts[key] = counts.get(key, 0) + 1
            continue
        group = which_group(headers, body) if status == 200 else f"status {status}"
        counts[group] = counts.get(group, 0) + 1
        if headers.get("set-cookie"):
            counts["set-cookie"] = counts.get("set-cookie", 0) + 1
    target.sticky_check = dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Row:
    cell: Cell
    runs: list[_wrk.WrkResult]
    note: str = ""

    @property
    def good(self) -> list[_wrk.WrkResult]:
        return [r for r in self.runs if r.ok]

    @property
    def rps(self) -> float | None:
        return median([r.rps for r in self.good]) if self.good else None

    def pct(self, attr: str) -> float | None:
        vals = [v for r in self.good if (v := getattr(r, attr)) is not None]
        return median(vals) if vals else None

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        good = self.good
        return {
            "layout": self.cell.layout,
            "config": self.cell.config,
            "mode": self.cell.mode,
            "note": self.note,
            "rps_median": self.rps,
            "rps_min": min(r.rps for r in good) if good else None,
            "rps_max": max(r.rps for r in good) if good else None,
            "p50_ms_median": self.pct("p50_ms"),
            "p99_ms_median": self.pct("p99_ms"),
            "other_cores_median": self.pct("other_cores"),
            "steal_cores_median": self.pct("steal_cores"),
            "errors": self.errors,
            "failed_runs": len(self.runs) - len(good),
        }


def ref_row(rows: dict[Cell, Row], cell: Cell) -> Row | None:
    cfg = BY_NAME[cell.config]
    mode = "new" if cell.mode == "-" else cell.mode
    ref = rows.get(Cell(cell.layout, cfg.ref, mode))
    return ref if ref is not None and ref.rps else None


def fmt_int(v: float | None) -> str:
    return f"{v:,.0f}" if v is not None else "—"


def fmt_ms(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "—"


def fmt_cores(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" + (" !" if v > NOISY_CORES else "")


def render_table(rows: dict[Cell, Row], plan: list[Cell], targets: dict[str, Target]) -> str:
    lines = [
        "| config | layout | mode | req/s (median) | range | p50 ms | p99 ms | errors "
        "| ratio to HAProxy | other CPU |",
        "|---|---|---|---:|---|---:|---:|---|---|---:|",
    ]
    order = {layout: i for i, layout in enumerate(dict.fromkeys(c.layout for c in plan))}
    cfg_order = {c.name: i for i, c in enumerate(CONFIGS)}
    for cell in sorted(plan, key=lambda c: (order[c.layout], cfg_order[c.config], c.mode != "new")):
        row = rows.get(cell)
        cfg = BY_NAME[cell.config]
        head = f"| {cfg.name} ({cfg.label}) | {cell.layout} | {cell.mode} |"
        target = targets.get(cell.config)
        if row is None or not row.good:
            why = (
                row.note
                if row is not None and row.note
                else (target.reason if target and target.reason else "not available")
            )
            if row is not None and row.runs and not row.note:
                why = "; ".join(sorted({r.error for r in row.runs if r.error})) or why
            lines.append(f"{head} not available | — | — | — | — | {why} | — |")
            continue
        good = row.good
        rng = f"{min(r.rps for r in good):,.0f}–{max(r.rps for r in good):,.0f}"
        if len(good) < len(row.runs):
            rng += f" ({len(row.runs) - len(good)} failed)"
        err = str(row.errors)
        if row.errors:
            non2xx = sum(r.non2xx for r in row.runs)
            sock = row.errors - non2xx
            err = f"{row.errors} (non-2xx {non2xx}, socket {sock})"
        ref = ref_row(rows, cell)
        ratio = "—"
        if ref is not None and row.rps is not None and ref.rps:
            ratio = f"{row.rps / ref.rps:.2f}× {BY_NAME[cell.config].ref}"
        lines.append(
            f"{head} {fmt_int(row.rps)} | {rng} | {fmt_ms(row.pct('p50_ms'))} | "
            f"{fmt_ms(row.pct('p99_ms'))} | {err} | {ratio} | {fmt_cores(row.pct('other_cores'))} |"
        )
    return "\n".join(lines)


def evaluate_targets(
    rows: dict[Cell, Row], connections: int, metrics_off_counts: bool = False
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    layouts = list(dict.fromkeys(c.layout for c in rows))

    def rps(layout: str, name: str, mode: str) -> float | None:
        row = rows.get(Cell(layout, name, mode))
        return row.rps if row else None

    def ratio_target(title: str, name: str, ref: str, goal: float, home: str) -> None:
        found = False
        for layout in layouts:
            for mode in MODES:
                a, b = rps(layout, name, mode), rps(layout, ref, mode)
                if a is None or b is None:
                    continue
                found = True
                value = a / b
                out.append(
                    {
                        "target": title,
                        "layout": layout,
                        "mode": mode,
                        "primary": layout == home,
                        "measured": f"{value:.2f}× ({a:,.0f} vs {b:,.0f} req/s)",
                        "value": value,
                        "met": value >= goal,
                    }
                )
        if not found:
            out.append(
                {
                    "target": title,
                    "layout": home,
                    "mode": "—",
                    "primary": True,
                    "measured": f"not measured (needs {name} and {ref} in one layout)",
                    "value": None,
                    "met": None,
                }
            )

    ratio_target(
        f"1 process ≥ {TARGET_1P_RATIO} × HAProxy 1-thread req/s",
        "sluice-1p",
        "haproxy-1t",
        TARGET_1P_RATIO,
        "pinned",
    )
    ratio_target(
        f"--workers 2 ≥ {TARGET_2W_RATIO} × HAProxy 2-thread req/s",
        "sluice-2w",
        "haproxy-2t",
        TARGET_2W_RATIO,
        "L2",
    )

    title = f"p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_P99_CONNECTIONS} connections, unpinned"
    found = False
    for cell, row in rows.items():
        if cell.layout != "unpinned" or BY_NAME[cell.config].kind != "sluice":
            continue
        if not BY_NAME[cell.config].metrics:
            continue
        p99 = row.pct("p99_ms")
        if p99 is None:
            continue
        found = True
        note = "" if connections == TARGET_P99_CONNECTIONS else f" (at {connections} conns!)"
        out.append(
            {
                "target": f"{title} [{cell.config}]",
                "layout": "unpinned",
                "mode": cell.mode,
                "primary": True,
                "measured": f"{p99:.2f} ms{note}",
                "value": p99,
                "met": p99 <= TARGET_P99_MS if not note else None,
            }
        )
    if not found:
        out.append(
            {
                "target": title,
                "layout": "unpinned",
                "mode": "—",
                "primary": True,
                "measured": "not measured (run the default plan or --layout unpinned)",
                "value": None,
                "met": None,
            }
        )

    title = f"per-second metrics cost ≤ {TARGET_METRICS_COST:.0%}"
    found = False
    for layout in layouts:
        for mode in MODES:
            on, off = rps(layout, "sluice-1p", mode), rps(layout, "sluice-1p-nometrics", mode)
            if on is None or off is None:
                continue
            found = True
            cost = 1 - on / off
            measured = f"{cost:+.1%} ({on:,.0f} on vs {off:,.0f} off)"
            if metrics_off_counts:
                measured += " INVALID: the metrics-off router still counted requests"
            out.append(
                {
                    "target": title,
                    "layout": layout,
                    "mode": mode,
                    "primary": layout == "pinned",
                    "measured": measured,
                    "value": cost,
                    "met": None if metrics_off_counts else cost <= TARGET_METRICS_COST,
                }
            )
    if not found:
        out.append(
            {
                "target": title,
                "layout": "pinned",
                "mode": "—",
                "primary": True,
                "measured": "not measured (needs sluice-1p and sluice-1p-nometrics)",
                "value": None,
                "met": None,
            }
        )
    return out


def render_targets(items: list[dict[str, Any]]) -> str:
    lines = ["| target | layout | mode | measured | result |", "|---|---|---|---|---|"]
    for t in items:
        met = t["met"]
        result = "—" if met is None else ("met" if met else "NOT met")
        layout = t["layout"] + ("" if t["primary"] else " (secondary)")
        lines.append(f"| {t['target']} | {layout} | {t['mode']} | {t['measured']} | {result} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# main


def wait_quiet(limit: float) -> float:
    """Wait (up to ``limit`` s) for 1 s in which other processes use < NOISY_CORES; -> their use."""
    deadline = time.monotonic() + limit
    while True:
        before = _procs.cpu_snapshot([os.getpid()])
        time.sleep(1.0)
        other = _procs.foreign_cpu(before, _procs.cpu_snapshot([os.getpid()]))["other_cores"]
        if other < NOISY_CORES or time.monotonic() >= deadline:
            return other


def run_cells(
    plan: list[Cell],
    args: argparse.Namespace,
    targets: dict[str, Target],
    backend: _procs.Proc,
    cpus: Cpus,
    on_result: Callable[[Cell, int, _wrk.WrkResult], None],
) -> None:
    for run_index in range(args.runs):
        for cell in plan:
            target = targets[cell.config]
            if not target.available:
                continue
            cookie = target.sticky_cookie if cell.mode == "sticky" else None
            if cell.mode == "sticky" and not cookie:
                continue
            _procs.set_affinity(backend.pid, cpus.backend(cell.layout))
            for other in targets.values():
                if other.proc is not None and other.available:
                    _procs.set_affinity(other.proc.pid, cpus.proxy(cell.layout))
            time.sleep(0.5)
            res = measure(args, target, cookie, cpus.wrk(cell.layout))
            for attempt in range(args.retry_noisy):
                if not res.ok or (res.other_cores or 0.0) <= NOISY_CORES:
                    break
                print(
                    f"  [run {run_index + 1}/{args.runs}] {cell.layout:<8} {cell.config:<20} "
                    f"{cell.mode:<6} noisy (other CPU {fmt_cores(res.other_cores)}, "
                    f"{res.rps:,.0f} req/s): again ({attempt + 1}/{args.retry_noisy})",
                    flush=True,
                )
                again = measure(args, target, cookie, cpus.wrk(cell.layout))
                if again.ok and (again.other_cores or 0.0) <= (res.other_cores or 0.0):
                    res = again
            on_result(cell, run_index, res)
            status = (
                f"{res.rps:>9,.0f} req/s  p50 {fmt_ms(res.p50_ms)}  p99 {fmt_ms(res.p99_ms)} ms"
                f"  errors {res.errors}  other CPU {fmt_cores(res.other_cores)}"
                if res.ok
                else f"FAILED: {res.error}"
            )
            print(
                f"  [run {run_index + 1}/{args.runs}] {cell.layout:<8} {cell.config:<20} "
                f"{cell.mode:<6} {status}",
                flush=True,
            )


def measure(
    args: argparse.Namespace, target: Target, cookie: str | None, wrk_cpus: str
) -> _wrk.WrkResult:
    """One wrk run, with the CPU other processes used meanwhile."""
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    before = _procs.cpu_snapshot([os.getpid()])
    res = _wrk.run(
        f"http://127.0.0.1:{target.port}/",
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        cookie=cookie,
        cpus=wrk_cpus,
    )
    noise = _procs.foreign_cpu(before, _procs.cpu_snapshot([os.getpid()]))
    res.other_cores, res.steal_cores = noise["other_cores"], noise["steal_cores"]
    return res


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = select_configs(args.only)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        sys.exit(f"--modes: unknown {bad} (new, sticky)")
    plan = build_plan(args.layout, names, modes)
    if not plan:
        sys.exit("nothing to run: check --only / --modes / --layout")
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install -y haproxy nginx wrk)")

    nofile = raise_nofile()
    cpus, cpu_note = pick_cpus()
    python = router_python(args.python)
    info = machine_info(python)
    started = time.strftime("%Y%m%d-%H%M%S")
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    n_cells = len(plan)
    est = n_cells * args.runs * (args.duration + 0.6)
    print("# Sluicegate router benchmark\n")
    print(f"- {info['kernel']}, cores A={cpus.a} B={cpus.b}{cpu_note}; ulimit -n {nofile[0]}")
    print(f"- {info['haproxy']}; {info['nginx']}; {info['wrk']}")
    print(f"- router python: {info['router_python']} ({python})")
    print(f"- load average now: {load_at_start} (other jobs on the machine skew every number)")
    print(
        f"- wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency; "
        f"median of {args.runs} interleaved run(s); {n_cells} rows; ~{est / 60:.1f} min"
    )
    print(
        f"- layouts: {', '.join(dict.fromkeys(c.layout for c in plan))}"
        f"{' (default plan)' if args.layout == 'default' else ''}\n"
    )

    tmp = Path(tempfile.mkdtemp(prefix="sluicegate-bench-"))
    needed = list(dict.fromkeys(c.config for c in plan))
    targets = {name: Target(BY_NAME[name]) for name in needed}
    ports = _procs.free_ports(2 + 2 * len(targets))
    blue, green = ports[0], ports[1]
    rows: dict[Cell, Row] = {cell: Row(cell, []) for cell in plan}
    raw_runs: list[dict[str, Any]] = []
    interrupted = False
    try:
        with _procs.managed(tmp) as procs:
            print("## Starting\n")
            backend = start_backend(procs, tmp, blue, green)
            _procs.set_affinity(backend.pid, {cpus.a})
            print(f"  backend nginx: blue :{blue}, green :{green} (pid {backend.pid})")
            for i, (name, target) in enumerate(targets.items()):
                port, admin = ports[2 + 2 * i], ports[3 + 2 * i]
                if name == "direct":
                    target.port, target.available = blue, True
                    continue
                target.port, target.admin_port = port, admin
                try:
                    start_target(procs, tmp, target, blue, green, admin, python)
                except OSError as exc:
                    target.reason = f"could not start: {exc}"
                    print(f"  {name}: NOT available: {target.reason}")

            print("\n## Split check (200 requests without a cookie; 50 with the sticky cookie)\n")
            for name, target in targets.items():
                if not target.available or name == "direct":
                    continue
                check_split(target)
                check_sticky(target)
                print(
                    f"  {name:<20} new: {target.split}  sticky {target.sticky_cookie!r}: "
                    f"{target.sticky_check or 'no cookie -> sticky rows skipped'}"
                )
                if target.sticky_cookie is None:
                    for cell in plan:
                        if cell.config == name and cell.mode == "sticky":
                            rows[cell].note = "no sticky cookie from the router"

            if args.warmup > 0:
                for target in targets.values():
                    if target.available:
                        _wrk.run(
                            f"http://127.0.0.1:{target.port}/",
                            duration=args.warmup,
                            connections=args.connections,
                            threads=args.threads,
                        )

            for target in targets.values():
                if target.available and target.config.kind == "sluice":
                    target.metrics_check = check_metrics(target)
                    print(f"  {target.config.name:<20} {target.metrics_check}")

            print("\n## Runs\n")

            def on_result(cell: Cell, run_index: int, res: _wrk.WrkResult) -> None:
                rows[cell].runs.append(res)
                raw_runs.append(
                    {
                        "layout": cell.layout,
                        "config": cell.config,
                        "mode": cell.mode,
                        "run": run_index + 1,
                        **res.to_json(),
                    }
                )

            try:
                run_cells(plan, args, targets, backend, cpus, on_result)
            except KeyboardInterrupt:
                interrupted = True
                print("\ninterrupted: stopping processes, reporting what was measured")
            for target in targets.values():
                if target.proc is not None and target.available and not target.proc.alive():
                    target.reason = f"exited during the run (code {target.proc.popen.returncode})"
                    print(f"  {target.config.name} {target.reason}: {target.proc.log_tail(400)}")
    finally:
        if args.keep_tmp:
            print(f"\n(temp dir kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n## Results\n")
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, median of "
        f"{args.runs} interleaved run(s); ratio = req/s / HAProxy (same layout and mode; "
        "1-process rows vs haproxy-1t, 2-worker rows vs haproxy-2t)\n"
    )
    print(render_table(rows, plan, targets))
    print(
        f"\nother CPU = cores used during the run by processes this benchmark did not start "
        f"(median; '!' above {NOISY_CORES:g}: another job was competing, distrust that row). "
        f"Load average at start: {load_at_start}."
    )
    off = targets.get("sluice-1p-nometrics")
    targets_eval = evaluate_targets(rows, args.connections, bool(off and off.metrics_counting))
    print("\n## Targets (all features on; issue targets, ratios from this run)\n")
    print(render_targets(targets_eval))
    if any(not BY_NAME[c].metrics for c in targets):
        print("\n(metrics off = SLUICE_ROUTER_METRICS=0 in the router's environment)")

    if not args.no_json:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"router-{started}.json"
        doc = {
            "started": started,
            "interrupted": interrupted,
            "args": {k: v for k, v in vars(args).items()},
            "machine": info,
            "cpus": {"a": cpus.a, "b": cpus.b},
            "nofile": list(nofile),
            "load_at_start": load_at_start,
            "targets": {
                name: {
                    "label": t.config.label,
                    "port": t.port,
                    "available": t.available,
                    "reason": t.reason,
                    "command": t.proc.cmd if t.proc else None,
                    "split": t.split,
                    "sticky_cookie": t.sticky_cookie,
                    "sticky_check": t.sticky_check,
                    "metrics_check": t.metrics_check,
                }
                for name, t in targets.items()
            },
            "rows": [rows[c].to_json() for c in plan],
            "goals": targets_eval,
            "runs": raw_runs,
        }
        path.write_text(json.dumps(doc, indent=2))
        print(f"\nraw results: {path.relative_to(REPO)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
