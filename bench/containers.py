"""Container replicas: start → healthy, memory per replica and deployment wall time,
against local processes.

Runs its own ``podman system service`` (as the tests do: runc, a vfs store in a temp dir)
and the tests' image (busybox httpd on scratch). The baseline, measured in the same run,
is the same busybox httpd started as a local process by ``LocalCompute``: the difference is
what a container costs. Prints a table; not a test.

    python bench/containers.py [--runs 20] [--replicas 5]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluicegate.clock import SystemClock
from sluicegate.compute import (
    ComputeSelector,
    ContainerCompute,
    ContainerSpec,
    HostRef,
    LocalCompute,
    LocalSpec,
)
from sluicegate.deploy.controller import Controller
from sluicegate.router.supervisor import RouterSupervisor
from sluicegate.router.traffic import RouterTraffic
from sluicegate.spec.service import ServiceSpec
from sluicegate.store import Store
from tests._support.podman import (
    APP_IMAGE,
    PodmanService,
    build_app_images,
    podman_service,
)


async def until_healthy(compute: ContainerCompute | LocalCompute, service: str) -> None:
    deadline = time.monotonic() + 30
    while not all(h.healthy for h in await compute.health(service, "v1", timeout=1)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service} not healthy in 30 s")
        await asyncio.sleep(0.01)


async def start_times(
    compute: ContainerCompute | LocalCompute, spec: ContainerSpec | LocalSpec, runs: int
) -> list[float]:
    times = []
    for i in range(runs):
        service = f"bench{i}"
        started = time.perf_counter()
        await compute.start(service, "v1", spec)  # type: ignore[arg-type]
        await until_healthy(compute, service)
        times.append(time.perf_counter() - started)
        await compute.stop(service, "v1", 0.0)
    return times


async def deploy_times(
    workdir: Path, compute: dict[str, Any], runs: int
) -> tuple[list[float], list[float]]:
    """Wall seconds of a first deployment and of a canary, ``runs`` times each."""
    store = Store.open(workdir / "sluicegate.db")
    router = RouterSupervisor(workdir)
    local = LocalCompute(workdir, poll_interval=0.1)
    containers = ContainerCompute()
    ctl = Controller(store, ComputeSelector(local=local, container=containers),
                     RouterTraffic(router.client()), SystemClock())  # fmt: skip
    firsts, canaries = [], []
    try:
        await router.ensure()
        for i in range(runs):
            name = f"shop{i}"
            spec = ServiceSpec.model_validate({
                "service": name, "listener": {"port": free_port()}, "compute": compute,
                "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
                "deployment": {"config": {"steps": [{"weight": 50, "pause": "1s"},
                                                    {"weight": 100}]},
                               "termination_wait": "0s", "wait_for_verdict": False},
            })  # fmt: skip
            await ctl.apply_service(spec, actor="bench")
            for revision, out in (("v1", firsts), ("v2", canaries)):
                started = time.perf_counter()
                dep = await ctl.deploy(name, revision, actor="bench")
                deadline = time.monotonic() + 60
                while (phase := store.deployments.get(dep.id).phase) != "succeeded":
                    if phase in ("failed", "rolled_back") or time.monotonic() > deadline:
                        events = [e.message for e in store.events.list(subject=dep.id)]
                        raise RuntimeError(f"{name} {revision}: {phase}: {events}")
                    await ctl.tick()
                    await asyncio.sleep(0.05)
                out.append(time.perf_counter() - started)
            await ctl.delete_service(name, "bench")
    finally:
        await local.aclose()
        await containers.aclose()
        router.stop()
        await router.aclose()
        store.close()
    return firsts, canaries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def container_rss(podman: PodmanService, service: str) -> list[int]:
    """Per container: RSS of its conmon and every process under it (init, app)."""
    ids = podman.podman("ps", "-q", "--no-trunc", "--filter",
                        f"label=sluicegate.service={service}").split()  # fmt: skip
    out = []
    for info in json.loads(podman.podman("inspect", *ids)):
        conmon = int(info["State"]["ConmonPid"])
        out.append(sum(rss_kib(p) for p in tree(conmon)))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(runs: int, replicas: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, podman_service(Path(tmp) / "podman") as podman:
        build_app_images(podman, Path(tmp), ("v1", "v2"))
        www = Path(tmp) / "app-image" / "www"
        containers = ContainerCompute()
        local = LocalCompute(Path(tmp) / "state")
        cspec = ContainerSpec(image=f"{APP_IMAGE}:v1", port=8080, hosts=(HostRef(podman.url),),
                              pull="never", stop_grace=1.0)  # fmt: skip
        lspec = LocalSpec(command=["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:{port}",
                                   "-h", str(www)], stop_grace=1.0)  # fmt: skip
        try:
            c_times = await start_times(containers, cspec, runs)
            l_times = await start_times(local, lspec, runs)
            await containers.start("mem", "v1", dataclasses.replace(cspec, replicas=replicas))
            await until_healthy(containers, "mem")
            c_rss = container_rss(podman, "mem")
            reps = await local.start("mem", "v1", dataclasses.replace(lspec, replicas=replicas))
            l_rss = [sum(rss_kib(p) for p in tree(r.pid or 0)) for r in reps]
            await containers.stop("mem", "v1", 0.0)
            await local.stop("mem", "v1", 0.0)
        finally:
            await containers.aclose()
            await local.aclose()
        as_process = {"local": {"command": lspec.command, "replicas": 2, "stop_grace": "1s"}}
        as_container = {"container": {"image": f"{APP_IMAGE}:{{revision}}", "port": 8080,
                                      "replicas": 2, "stop_grace": "1s", "pull": "never",
                                      "hosts": [podman.url]}}  # fmt: skip
        deploy_runs = max(3, runs // 4)
        d_local = await deploy_times(Path(tmp) / "d-local", as_process, deploy_runs)
        d_cont = await deploy_times(Path(tmp) / "d-cont", as_container, deploy_runs)
    print(f"machine: {os.cpu_count()} cores, podman (runc, vfs), {runs} runs each, "
          f"{replicas} replicas for memory")  # fmt: skip
    print(f"{'':32} {'p50':>9} {'p95':>9} {'max':>9}")
    rows = [
        ("container start→healthy (s)", c_times),
        ("local process start→healthy (s)", l_times),
        ("first deploy, local (s)", d_local[0]),
        ("first deploy, containers (s)", d_cont[0]),
        ("canary deploy, local (s)", d_local[1]),
        ("canary deploy, containers (s)", d_cont[1]),
    ]
    print(f"deployments: {len(d_local[0])} runs each, 2 replicas, canary 50 % for 1 s")
    for name, times in rows:
        print(
            f"{name:32} {statistics.median(times):9.3f} {pct(times, 0.95):9.3f} {max(times):9.3f}"
        )
    print(
        f"{'RSS per replica (KiB), median':32} container {statistics.median(c_rss):.0f}"
        f" (conmon+init+httpd), local {statistics.median(l_rss):.0f} (httpd)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.replicas))
