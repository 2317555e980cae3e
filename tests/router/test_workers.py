"""``--workers N``: one port served by N processes whose routing and metrics act as one."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests._support import AppProcess, RouterProcess, router_config, start_app, start_router
from tests._support.rawhttp import get_many


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[AppProcess, AppProcess]]:
    with start_app(version="v1") as blue, start_app(version="v2") as green:
        yield blue, green


@pytest.fixture(scope="module")
def router(apps: tuple[AppProcess, AppProcess]) -> Iterator[RouterProcess]:
    blue, green = apps
    config = router_config(
        {"blue": [blue], "green": [green]}, {"blue": 90, "green": 10}, sticky=True
    )
    with start_router(config, workers=2) as r:
        yield r


def worker_pids(router: RouterProcess) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == router.proc.pid:
                out.append(int(entry))
    return out


def test_weight_change_reaches_every_worker_before_the_call_returns(
    router: RouterProcess,
) -> None:
    r = router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 0, "green": 100}})
    assert r.status_code == 200
    # Many fresh connections, spread over both workers by SO_REUSEPORT.
    versions = Counter(get_many(router.listener_port(), 1)[0].version for _ in range(60))
    assert versions == {"v2": 60}
    router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 90, "green": 10}})


def test_cookies_issued_by_one_worker_are_honoured_by_the_other(router: RouterProcess) -> None:
    router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 0, "green": 100}})
    cookie = get_many(router.listener_port(), 1)[0].set_cookie()
    router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 90, "green": 10}})
    assert cookie is not None and cookie.startswith("green.")
    seen = {
        get_many(router.listener_port(), 1, {"Cookie": f"sluice_tg={cookie}"})[0].version
        for _ in range(40)
    }
    assert seen == {"v2"}


def test_metrics_from_all_workers_are_merged_exactly(router: RouterProcess) -> None:
    def total() -> int:
        series = router.admin("GET", "/v1/status").json()
        assert series["workers"] == 2
        text = router.admin("GET", "/metrics").text
        return sum(
            int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("sluicegate_router_requests_total{")
            and 'target_group="-"' not in line
        )

    before = total()
    sent = 0
    for _ in range(40):  # new connections land on both workers
        sent += len(get_many(router.listener_port(), 25))
    assert total() - before == sent


def test_a_crashed_worker_is_restarted_with_the_current_weights(router: RouterProcess) -> None:
    router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 0, "green": 100}})
    pids = worker_pids(router)
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        now = worker_pids(router)
        if len(now) == 2 and pids[0] not in now:
            break
        assert time.monotonic() < deadline, "worker was not restarted"
        time.sleep(0.1)
    versions = Counter(get_many(router.listener_port(), 1)[0].version for _ in range(60))
    assert versions == {"v2": 60}
    assert "starting it again" in router.logs()
    router.admin("PUT", "/v1/listeners/web/weights", {"weights": {"blue": 90, "green": 10}})
