"""Reloads racing the health checker: a reload never fails because checks come and go."""

from __future__ import annotations

import contextlib
import copy
import random
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests._support import RouterProcess, router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


@contextlib.contextmanager
def dead_targets(n: int) -> Iterator[list[str]]:
    """``n`` targets nobody listens on: ports held bound but not listening (connect is
    refused at once), so no other process can take them while the test runs."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        yield [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()


def random_config(base: dict[str, Any], pool: list[str], rng: random.Random) -> dict[str, Any]:
    """``base`` with new random target sets, check intervals and weights per group."""
    config = copy.deepcopy(base)
    for group in config["target_groups"]:
        group["targets"] = rng.sample(pool, rng.randint(1, len(pool)))
        interval = rng.choice([0.2, 0.3, 0.5, 1.0])
        group["health_check"].update(
            interval=interval,
            timeout=min(interval, 0.2),
            healthy_threshold=1,
            unhealthy_threshold=1,
        )
    for wg in config["listeners"][0]["default"]["forward"]:
        wg["weight"] = rng.randint(1, 100)
    return config


def reload_many(
    router: RouterProcess, base: dict[str, Any], pool: list[str], count: int, seed: int
) -> list[str]:
    """PUT ``count`` random configs from two clients at once; returns the failed answers."""
    configs = [random_config(base, pool, random.Random(seed + i)) for i in range(count)]

    def put(config: dict[str, Any]) -> str | None:
        r = router.admin("PUT", "/v1/config", config)
        return None if r.status_code == 200 else f"{r.status_code} {r.text}"

    with ThreadPoolExecutor(2) as pool_:
        return [answer for answer in pool_.map(put, configs) if answer is not None]


@pytest.mark.parametrize(("workers", "count"), [(1, 500), (2, 150)])
def test_every_reload_answers_200_while_health_checks_come_and_go(
    app_factory: AppFactory, router_factory: RouterFactory, workers: int, count: int
) -> None:
    apps = [app_factory(name=f"live-{i}") for i in range(2)]
    live = [a.address for a in apps]
    with dead_targets(10) as dead:
        base = router_config({"blue": list(apps), "green": list(apps)}, interval="200ms")
        router = router_factory(base, workers=workers)
        failures = reload_many(router, base, live + dead, count, seed=workers * 10_000)
        assert not failures, f"{len(failures)} of {count} reloads failed: {failures[:3]}"
        generation = router.admin("GET", "/v1/config").json()["generation"]
        assert generation == 1 + count
        # The router is still whole: a final reload onto live targets serves every request.
        r = router.admin("PUT", "/v1/config", base)
        assert r.status_code == 200, r.text
        replies = get_many(router.listener_port(), 20)
        assert [x.status for x in replies] == [200] * 20, {x.body for x in replies}
