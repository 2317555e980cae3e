#!/usr/bin/env python3
"""The blast-radius benchmark (issue 4): how much damage a bad release does, per strategy.

Same bad-release scenario, on this machine, for three strategies:

  (a) AllAtOnce, no alarm, observed for a fixed window (the issue's 5 minutes, compressed by
      ``--window``);
  (b) "CodeDeploy-like": Canary10Percent5Minutes (time compressed by ``--period``/60) guarded
      by a 1-of-1 alarm on green's 5xx rate with a ``--period`` period. The alarm is evaluated
      by this script with ``sluicegate.monitor.evaluate`` over datapoints built from the
      router's per-second metrics (its admin API), and on ALARM the script runs
      ``sluice rollback ID``, as CodeDeploy acts on a CloudWatch alarm;
  (c) Sluicegate defaults: the same canary as (b), guarded by the server's built-in guards
      (green against blue, no configuration) instead of the 1-of-1 alarm.

Load (the same for all): U users, each its own httpx cookie jar, sending a steady total of
R req/s through the router; new users arrive at a fixed rate (replacing the oldest), so a
canary meets new users. The bad revision answers 500 to ``--fail-percent`` % of requests.

Every scenario starts its own ``sluice server`` in a temporary state dir on free ports, and
everything it started (server, router, replicas) is stopped by pid at the end. Only
127.0.0.1 traffic.

The servers of (a) and (b) run with ``sluice server --no-default-guards``, so only the
script's alarm (b) can roll back; ``--keep-guards`` leaves the built-in guards on there too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from sluicegate.monitor import AlarmState, Datapoint, StatSet, aggregate, combine, evaluate
from sluicegate.monitor.alarms import evaluation_range
from sluicegate.spec import AlarmSpec

REPO = Path(__file__).resolve().parent.parent
SERVICE = "shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 2:
            out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def _tree(pid: int) -> list[int]:
    children, tree, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _pids_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment names ``text`` (our unique temp dir)."""
    found = []
    needle = text.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{entry.name}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry.name))
                        break
            except OSError:
                continue
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return False


class Cluster:
    """``sluice server`` in a temp dir, the shop service applied, v1 deployed."""

    def __init__(self, workdir: Path, spec: dict[str, Any], guards: bool = True) -> None:
        self.workdir = workdir
        self.guards = guards
        self.state = workdir / "state"
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.token = ""
        self.spec = spec
        self.server: subprocess.Popen[str] | None = None
        self.router_url = ""
        self.router_token = ""

    def start(self, v1_env: dict[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "server.log", "w") as err:
            self.server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluicegate",
                    "server",
                    "--state-dir",
                    str(self.state),
                    *([] if self.guards else ["--no-default-guards"]),
                    "--port",
                    str(self.api_port),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=REPO,
            )
        assert self.server.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.server.stdout:
            if m := re.search(r"admin token .*: (\S+)", line):
                self.token = m.group(1)
            if "ready on" in line or time.monotonic() > deadline:
                break
        if not self.token:
            raise RuntimeError(f"sluice server did not start (see {self.workdir}/server.log)")
        threading.Thread(target=self.server.stdout.read, daemon=True).start()
        spec_path = self.workdir / "shop.yaml"
        spec_path.write_text(yaml.safe_dump(self.spec))
        self.sluice("apply", "-f", str(spec_path))
        sets = [a for k, v in v1_env.items() for a in ("--set", f"env.{k}={v}")]
        dep = self.deploy("v1", *sets)
        self.wait(dep, {"succeeded"}, 90)
        info = json.loads((self.state / "router" / "router.json").read_text())
        self.router_url = str(info.get("admin_url") or f"http://127.0.0.1:{info['admin_port']}")
        self.router_token = (self.state / "router" / "admin.token").read_text().strip()

    def sluice(self, *args: str) -> str:
        env = {**os.environ, "SLUICE_URL": self.url, "SLUICE_TOKEN": self.token}
        out = subprocess.run(
            [sys.executable, "-m", "sluicegate", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"sluice {' '.join(args)}: {out.stderr or out.stdout}")
        return out.stdout

    def deploy(self, revision: str, *extra: str) -> str:
        out = self.sluice("deploy", SERVICE, "--revision", revision, *extra)
        m = re.search(r"deployment (\S+):", out)
        if not m:
            raise RuntimeError(f"no deployment id in: {out}")
        return m.group(1)

    def deployment(self, dep: str) -> dict[str, Any]:
        r = httpx.get(
            f"{self.url}/v1/deployments/{dep}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def wait(self, dep: str, phases: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            phase = str(self.deployment(dep)["phase"])
            if phase in phases:
                return phase
            time.sleep(0.3)
        raise RuntimeError(f"deployment {dep} did not reach {phases} in {timeout:.0f} s")

    def router_seconds(self, window: int) -> dict[str, dict[int, tuple[int, int]]]:
        """Target group -> second -> (requests, 5xx) from the router's admin API."""
        r = httpx.get(
            f"{self.router_url}/v1/metrics",
            params={"window": window, "listener": SERVICE},
            headers={"Authorization": f"Bearer {self.router_token}"},
            timeout=5,
        )
        r.raise_for_status()
        out: dict[str, dict[int, tuple[int, int]]] = {}
        for series in r.json()["series"]:
            if series["listener"] != SERVICE or series["target_group"] == "-":
                continue
            out[series["target_group"]] = {
                int(p["t"]): (int(p["requests"]), int(p["5xx"])) for p in series["seconds"]
            }
        return out

    def stop(self) -> None:
        """The server leaves the router and replicas running by design: stop all by pid."""
        pids: list[int] = []
        if self.server is not None:
            pids += _tree(self.server.pid)
        router_json = self.state / "router" / "router.json"
        if router_json.exists():
            with contextlib.suppress(ValueError, KeyError):
                pids += _tree(int(json.loads(router_json.read_text())["pid"]))
        pids += _pids_mentioning(str(self.workdir))
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.wait(10)
        pids = sorted(set(pids) | set(_pids_mentioning(str(self.workdir))))
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        _signal_all([p for p in pids if _alive(p)], signal.SIGKILL)
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(5)


# --- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    t: float  # wall clock (epoch) when the answer arrived
    status: int  # 0: no answer (transport error or timeout)
    version: str


@dataclass
class Load:
    """U users with their own cookie jars, R req/s in total, new users at a fixed rate."""

    port: int
    users: int
    rate: float
    arrivals: float
    records: list[Record] = field(default_factory=list)
    skipped: int = 0  # sends the generator could not make on time (machine too busy)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    def stop(self) -> list[Record]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return sorted(self.records, key=lambda r: r.t)

    @staticmethod
    def _client() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=4))

    async def _one(self, client: httpx.AsyncClient, url: str, sem: asyncio.Semaphore) -> None:
        async with sem:
            try:
                r = await client.get(url)
                self.records.append(
                    Record(time.time(), r.status_code, r.headers.get("x-version", "?"))
                )
            except httpx.HTTPError as exc:  # the exception names who failed: e.g. a
                # PoolTimeout is this generator falling behind, a ConnectError the router
                self.records.append(Record(time.time(), 0, type(exc).__name__))
            except RuntimeError:  # the user left (client closed) before this send got a turn
                self.skipped += 1

    async def _main(self) -> None:
        url = f"http://127.0.0.1:{self.port}/"
        clients = [self._client() for _ in range(self.users)]
        retired: list[tuple[float, httpx.AsyncClient]] = []
        sem = asyncio.Semaphore(512)
        tasks: set[asyncio.Task[None]] = set()
        interval = 1.0 / self.rate
        start = time.monotonic()
        next_send, next_arrival, i, slot = start, start + 1.0 / self.arrivals, 0, 0
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_send:
                await asyncio.sleep(min(next_send - now, 0.05))
                continue
            if now - next_send > 1.0:  # more than a second behind: do not burst, skip
                missed = int((now - next_send) / interval)
                self.skipped += missed
                next_send += missed * interval
            task = asyncio.create_task(self._one(clients[i % self.users], url, sem))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            next_send += interval
            while now >= next_arrival:  # a new user replaces the oldest one
                retired.append((now, clients[slot]))
                clients[slot] = self._client()
                slot = (slot + 1) % self.users
                next_arrival += 1.0 / self.arrivals
            while retired and now - retired[0][0] > 30:  # sends queued for it are done
                await retired.pop(0)[1].aclose()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for _, c in retired:
            await c.aclose()
        for c in clients:
            await c.aclose()


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Result:
    strategy: str
    phase: str
    requests: int
    failed: int
    served_by_bad: int
    first_bad: float | None
    detect: float | None  # seconds from the first bad response
    restore: float | None
    last_bad: float | None  # last response from the bad revision, seconds after first bad
    reason: str = ""
    skipped: int = 0
    rollback_by: str = ""
    failures: str = ""  # failed answers by version:status


def base_spec(args: argparse.Namespace, port: int, test_port: int) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((REPO / "examples" / "shop.yaml").read_text())
    spec["listener"] = {"port": port, "test_port": test_port}
    spec["compute"]["local"]["command"][:2] = [sys.executable, str(REPO / "examples/app.py")]
    return spec


def green_alarm(revision: str, args: argparse.Namespace) -> AlarmSpec:
    dims = {"listener": SERVICE, "target_group": f"{SERVICE}.{revision}"}
    return AlarmSpec.model_validate(
        {
            "name": "green-5xx-rate",
            "metrics": {
                "e": {"source": "router", "name": "5xx", "dimensions": dims},
                "r": {"source": "router", "name": "requests", "dimensions": dims},
            },
            "expression": "e / r",
            "statistic": "Sum",
            "period": f"{args.period}s",
            "evaluation_periods": 1,
            "datapoints_to_alarm": 1,
            "threshold": args.alarm_threshold,
            "comparison": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching",
        }
    )


def alarm_state(
    cluster: Cluster, spec: AlarmSpec, revision: str, previous: AlarmState | None
) -> AlarmState:
    period = int(spec.period)
    count = evaluation_range(spec)
    window = min(period * count + 5, 300)
    group = cluster.router_seconds(window).get(f"{SERVICE}.{revision}", {})
    end = int(time.time() - 1.5) // period * period  # only closed periods
    e = {t: StatSet.events(v[1]) for t, v in group.items()}
    r = {t: StatSet.events(v[0]) for t, v in group.items()}
    series: dict[str, list[Datapoint]] = {
        "e": aggregate("Sum", e, end=end, period=period, count=count),
        "r": aggregate("Sum", r, end=end, period=period, count=count),
    }
    return evaluate(spec, combine(spec, series), previous).state


def run_scenario(
    kind: str,
    args: argparse.Namespace,
    tag: str,
    *,
    healthy: bool = False,
    phase: float | None = None,
) -> Result:
    """One deployment of the bad (or, ``healthy``, a good) revision under load. ``phase``:
    start the deployment that many seconds into the alarm's period (wall clock)."""
    port, test_port = free_port(), free_port()
    spec = base_spec(args, port, test_port)
    canary_interval = 300.0 * args.period / 60.0
    observe = float(args.window)
    if kind == "a":
        spec["deployment"]["config"] = "AllAtOnce"
    else:
        # (b) and (c) shift traffic by the same plan, so the difference is the detection.
        spec["deployment"]["config"] = {
            "canary": {"percent": 10, "interval": f"{canary_interval:g}s"}
        }
        observe = max(observe, canary_interval + 2 * args.period + 10)
    spec["deployment"]["termination_wait"] = f"{int(observe) + 60}s"
    workdir = Path(tempfile.mkdtemp(prefix=f"blast-{kind}-", dir=args.tmp))
    cluster = Cluster(workdir, spec, guards=kind == "c" or args.keep_guards)
    background = {"SHOP_FAIL_PERCENT": "1"} if healthy else {}
    bad_rev = f"v2{kind}"
    try:
        log(f"{tag}: starting server in {workdir}")
        cluster.start(background)
        load = Load(port, args.users, args.rate, args.arrivals)
        load.start()
        time.sleep(args.settle)
        if phase is not None:
            time.sleep((phase - time.time()) % args.period)
        fail = "1" if healthy else str(args.fail_percent)
        dep = cluster.deploy(bad_rev, "--set", f"env.SHOP_FAIL_PERCENT={fail}")
        t0 = time.time()
        log(f"{tag}: deployment {dep} of {bad_rev} (SHOP_FAIL_PERCENT={fail}) started")
        alarm = green_alarm(bad_rev, args) if kind in "bd" else None
        # (d): CloudWatch evaluates an alarm once a period, at a moment of its own, not the
        # moment a period closes (the anchor's "+ <= 1 evaluation tick"): a random phase.
        next_eval = time.time() + random.uniform(0, args.period) if kind == "d" else 0.0
        state: AlarmState | None = None
        alarm_at: float | None = None
        phase = ""
        deadline = time.monotonic() + observe
        while time.monotonic() < deadline:
            phase = str(cluster.deployment(dep)["phase"])
            if phase in ("rolled_back", "failed", "stopped"):
                break
            if phase in ("succeeded", "termination_wait") and kind != "a":
                break
            if alarm is not None and alarm_at is None and time.time() >= next_eval:
                if kind == "d":
                    next_eval += args.period
                with contextlib.suppress(httpx.HTTPError):
                    state = alarm_state(cluster, alarm, bad_rev, state)
                if state is AlarmState.ALARM:
                    alarm_at = time.time()
                    log(f"{tag}: alarm in ALARM; sluice rollback {dep}")
                    with contextlib.suppress(RuntimeError):
                        cluster.sluice("rollback", dep)
                    continue
            time.sleep(0.5)
        time.sleep(2.0)  # a tail: in-flight requests after the restore
        records = load.stop()
        d = cluster.deployment(dep)
        return summarize(kind, d, records, bad_rev, alarm_at, load.skipped, t0)
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def summarize(
    kind: str,
    d: dict[str, Any],
    records: list[Record],
    bad_rev: str,
    alarm_at: float | None,
    skipped: int,
    t0: float,
) -> Result:
    failed = [r for r in records if r.status == 0 or r.status >= 500]
    bad = [r for r in records if r.version == bad_rev]
    first_bad = next((r.t for r in bad if r.status >= 500), None)
    events = d.get("events", [])
    rolled = next((float(e["at"]) for e in events if e["kind"] == "deployment.rolled_back"), None)
    starts = [
        float(e["at"]) for e in events if "rollback" in e["kind"] or "rolled_back" in e["kind"]
    ]
    detect_at = min([*starts, *([alarm_at] if alarm_at else [])], default=None)
    who = ""
    if rolled is not None:
        who = "script alarm" if alarm_at is not None and alarm_at <= rolled else "default guards"

    def rel(t: float | None) -> float | None:
        return None if t is None or first_bad is None else t - first_bad

    return Result(
        strategy=kind,
        phase=str(d["phase"]),
        requests=len(records),
        failed=len(failed),
        served_by_bad=len(bad),
        first_bad=rel(first_bad) if first_bad else None,
        detect=rel(detect_at),
        restore=rel(rolled),
        last_bad=rel(bad[-1].t if bad else None),
        reason=str(d.get("state", {}).get("reason") or ""),
        skipped=skipped,
        rollback_by=who,
        failures=", ".join(
            f"{k}: {n}"
            for k, n in sorted(Counter(f"{r.version}:{r.status}" for r in failed).items())
        ),
    )


# --- report ----------------------------------------------------------------------------------


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


NAMES = {
    "a": "(a) AllAtOnce, no alarm",
    "b": "(b) CodeDeploy-like canary + 1-of-1 alarm",
    "c": "(c) Sluicegate defaults",
    "d": "(b') as (b), alarm evaluated once a period (CloudWatch's tick)",
}


def report(
    args: argparse.Namespace, results: dict[str, list[Result]], healthy: list[Result]
) -> str:
    lines = [
        f"## Blast radius (U={args.users} users, R={args.rate:g} req/s, "
        f"{args.arrivals:g} new users/s, bad = {args.fail_percent} % 500s)",
        "",
        "| strategy | runs | outcome | requests | failed | served by bad | "
        "first bad → detection (s) | first bad → 100 % blue (s) | last bad answer (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rs in results.items():
        if not rs:
            continue
        if len(rs) == 1:
            r = rs[0]
            outcome = r.phase + (f" by {r.rollback_by}" if r.rollback_by else "")
            lines.append(
                f"| {NAMES[kind]} | 1 | {outcome} | {r.requests} | {r.failed} | "
                f"{r.served_by_bad} | {fmt(r.detect)} | {fmt(r.restore)} | "
                f"{fmt(r.last_bad)} |"
            )
        else:
            restores = [r.restore for r in rs if r.restore is not None]
            detects = [r.detect for r in rs if r.detect is not None]
            phases = ", ".join(sorted({r.phase for r in rs}))
            fails = [r.failed for r in rs]
            bads = [r.served_by_bad for r in rs]
            rest = (
                f"p50 {pct(restores, 0.5):.1f} / p95 {pct(restores, 0.95):.1f}" if restores else "—"
            )
            det = f"p50 {pct(detects, 0.5):.1f} / p95 {pct(detects, 0.95):.1f}" if detects else "—"
            lines.append(
                f"| {NAMES[kind]} | {len(rs)} | {phases} | "
                f"{statistics.median([r.requests for r in rs]):.0f} (median) | "
                f"median {statistics.median(fails):.0f}, max {max(fails)} | "
                f"median {statistics.median(bads):.0f}, max {max(bads)} | {det} | {rest} | "
                f"p95 {pct([r.last_bad for r in rs if r.last_bad is not None] or [0], 0.95):.1f}"
                " |"
            )
    if results["c"]:
        c_failed = statistics.median([r.failed for r in results["c"]])
        for kind in "bd":
            if results[kind]:
                b_failed = statistics.median([r.failed for r in results[kind]])
                share = f"{100 * c_failed / b_failed:.1f} %" if b_failed else "—"
                lines += [
                    "",
                    f"(c) failed {c_failed:g} requests (median) = **{share}** of "
                    f"what {NAMES[kind].split(' ')[0]} failed ({b_failed:g}).",
                ]
    if healthy:
        false = sum(1 for r in healthy if r.phase == "rolled_back")
        lines += [
            "",
            f"False rollbacks: **{false} of {len(healthy)}** healthy deployments "
            "(SHOP_FAIL_PERCENT=1 on both v1 and the new revision, Sluicegate defaults, "
            f"canary 10 % for {300.0 * (args.healthy_period or args.period) / 60.0:g} s "
            "each, then promoted).",
        ]
    interval = 300.0 * args.period / 60.0
    lines += [
        "",
        "Notes:",
        f"- (a) observed for a **{args.window} s window** (the issue's 5 minutes, compressed "
        "with `--window`).",
        f"- (b) alarm: green `5xx / requests` (Sum) > {args.alarm_threshold:g}, "
        f"**period {args.period} s**, 1 of 1, notBreaching, min 10 samples, evaluated by this "
        "script with `sluicegate.monitor.evaluate` on the router's per-second metrics about "
        f"once a second (CloudWatch evaluates once a period); on ALARM it runs `sluice rollback`."
        f" Canary10Percent5Minutes is compressed by the same factor: 10 % for {interval:g} s.",
        *(
            [
                "- (b') is (b) with the alarm evaluated once a period at a random phase, as "
                "CloudWatch evaluates an alarm once a period (the anchor's '+ <= 1 evaluation "
                "tick'), not the moment each period closes."
            ]
            if results["d"]
            else []
        ),
        f"- (c) the same canary as (b) (10 % for {interval:g} s), guarded only by the server's "
        "built-in guards (green against blue, no configuration).",
        "- 'requests' counts everything users sent, the few seconds on v1 before the "
        "deployment included.",
        (
            "- **The server's default guards were also active in (a) and (b)** (`--keep-guards`);"
            " 'outcome' says who rolled back."
            if args.keep_guards
            else "- (a) and (b) ran with `sluice server --no-default-guards`: nothing but (b)'s"
            " alarm could roll back."
        ),
        "- Times are seconds after the first 500 a user got from the bad revision; detection is "
        "the earliest of the script's ALARM and the first rollback event, '100 % blue' the "
        "`deployment.rolled_back` event; 'last bad answer' is the last response users got from "
        "the bad revision (client clock).",
        "- One run of a shared, noisy 2-core machine: load generator, router, replicas and "
        "server all share it.",
    ]
    skipped = sum(r.skipped for rs in results.values() for r in rs)
    if skipped:
        lines.append(f"- The load generator fell behind and skipped {skipped} sends in all.")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--users", type=int, default=50, help="concurrent users U (default 50)")
    p.add_argument("--rate", type=float, default=200, help="total req/s R (default 200)")
    p.add_argument(
        "--arrivals",
        type=float,
        default=5,
        help="new users per second, each replacing the oldest (default 5)",
    )
    p.add_argument(
        "--fail-percent",
        type=int,
        default=30,
        help="SHOP_FAIL_PERCENT of the bad revision (default 30)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=60,
        help="observation window of (a) in s (the issue's 300, default 60)",
    )
    p.add_argument(
        "--period",
        type=int,
        default=60,
        help="alarm period of (b) in s; the 5-minute canary is scaled by "
        "period/60 (default 60: no compression)",
    )
    p.add_argument(
        "--alarm-threshold",
        type=float,
        default=0.05,
        help="(b)'s alarm threshold on green's 5xx rate (default 0.05)",
    )
    p.add_argument("--runs", type=int, default=1, help="runs of (c), for p50/p95 (default 1)")
    p.add_argument(
        "--baseline-runs",
        type=int,
        default=1,
        help="runs of (b) and (b'); their alarm fires at the end of the minute in "
        "which green starts failing, so one run swings with that phase: the "
        "runs start at phases spread evenly over the period; compare "
        "medians (default 1)",
    )
    p.add_argument(
        "--healthy-runs",
        type=int,
        default=0,
        help="healthy deployments (1 %% errors on both) to count false rollbacks",
    )
    p.add_argument(
        "--healthy-period",
        type=int,
        default=None,
        help="--period for the healthy runs only (their canary lasts 5 min x "
        "healthy-period/60; default: --period)",
    )
    p.add_argument(
        "--strategies",
        default="abc",
        help="which of a, b, c, d to run (default abc; d is (b) with the alarm "
        "evaluated once a period at a random phase, as CloudWatch does)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds of load on v1 before the deployment (default 3)",
    )
    p.add_argument(
        "--keep-guards",
        action="store_true",
        help="keep the server's default guards on in (a) and (b) too (by default "
        "their servers run with --no-default-guards)",
    )
    p.add_argument("--tmp", default=None, help="parent of the temp dirs (default: system)")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs (logs)")
    args = p.parse_args()

    results: dict[str, list[Result]] = {k: [] for k in "abcd"}
    healthy: list[Result] = []
    try:
        for kind in "abdc":
            if kind not in args.strategies:
                continue
            runs = args.runs if kind == "c" else args.baseline_runs if kind in "bd" else 1
            for n in range(runs):
                tag = f"({kind}) run {n + 1}"
                # A period alarm detects at the end of the period in which green started
                # failing, so (b)/(d) depend on where the deployment starts in that period:
                # spread their runs evenly over it (otherwise back-to-back runs of equal
                # length all start at the same phase and share one detection delay).
                phase = (n + 0.5) / runs * args.period if kind in "bd" else None
                if phase is not None:
                    tag += f" (starts {phase:.0f} s into the alarm period)"
                r = run_scenario(kind, args, tag, phase=phase)
                log(
                    f"{tag}: {r.phase}, failed {r.failed}, bad {r.served_by_bad}, "
                    f"restore {fmt(r.restore)} s {r.reason[:100]}"
                )
                results[kind].append(r)
        hargs = argparse.Namespace(**{**vars(args), "period": args.healthy_period or args.period})
        for n in range(args.healthy_runs):
            r = run_scenario("c", hargs, f"healthy run {n + 1}", healthy=True)
            log(
                f"healthy run {n + 1}: {r.phase}; failed answers {r.failures or 'none'}; {r.reason}"
            )
            healthy.append(r)
    except KeyboardInterrupt:
        log("interrupted; reporting what ran")
    print(report(args, results, healthy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
