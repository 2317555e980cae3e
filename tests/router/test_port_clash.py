"""A reload onto a port the router cannot open is refused by name and keeps the old config;
``?dry_run=1`` answers the same question without changing anything."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.router import RouterClient
from tests._support import AppProcess, RouterProcess, free_port, router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A port another program holds: bound and listening, as a server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def with_listener(config: dict[str, Any], name: str, port: int, group: str) -> dict[str, Any]:
    """``config`` plus a listener ``name`` on ``port`` forwarding to ``group``."""
    out = copy.deepcopy(config)
    out["listeners"].append(
        {"name": name, "port": port, "default": {"forward": [{"target_group": group, "weight": 1}]}}
    )
    return out


def current(router: RouterProcess) -> tuple[int, dict[str, Any]]:
    data = router.admin("GET", "/v1/config").json()
    return int(data["generation"]), data["config"]


def served_by(router: RouterProcess, port: int, n: int = 20) -> set[str]:
    replies = get_many(port, n)
    assert [r.status for r in replies] == [200] * n, [r.body for r in replies]
    return {r.headers["x-served-by"] for r in replies}


@pytest.fixture
def apps(app_factory: AppFactory) -> tuple[AppProcess, AppProcess]:
    return app_factory(name="blue-1"), app_factory(name="green-1")


def start(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess], workers: int = 1
) -> RouterProcess:
    blue, green = apps
    return router_factory(
        router_config({"blue": [blue], "green": [green]}, {"blue": 100, "green": 0}),
        workers=workers,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_onto_a_port_another_program_holds_is_a_422_naming_the_listener_and_port(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess], workers: int
) -> None:
    router = start(router_factory, apps, workers)
    generation, before = current(router)
    with held_port() as port:
        wanted = with_listener(before, "api", port, "green")
        wanted["listeners"][0]["default"]["forward"] = [
            {"target_group": "blue", "weight": 0},
            {"target_group": "green", "weight": 100},
        ]
        r = router.admin("PUT", "/v1/config", wanted)
        assert r.status_code == 422, r.text
        assert r.json()["problems"] == [
            {
                "path": "listeners[1].port",
                "message": f"cannot listen on 127.0.0.1:{port}: address already in use "
                "(another program holds it)",
            }
        ]
        # The old config keeps serving, in every worker: same weights, same listeners.
        assert current(router) == (generation, before)
        assert served_by(router, router.listener_port(), 40) == {"blue-1"}
    # No plane kept the refused port open for itself.
    assert not listening(port)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_refused_reload_leaves_the_planes_able_to_take_the_port_once_it_is_free(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess], workers: int
) -> None:
    router = start(router_factory, apps, workers)
    _, before = current(router)
    with held_port() as port:
        assert (
            router.admin(
                "PUT", "/v1/config", with_listener(before, "api", port, "green")
            ).status_code
            == 422
        )
    r = router.admin("PUT", "/v1/config", with_listener(before, "api", port, "green"))
    assert r.status_code == 200, r.text
    assert served_by(router, port, 40) == {"green-1"}
    assert served_by(router, router.listener_port(), 40) == {"blue-1"}


def test_moving_a_listener_onto_a_port_this_router_holds_names_the_listener_holding_it(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess]
) -> None:
    router = start(router_factory, apps)
    _, before = current(router)
    port = router.listener_port()
    moved = copy.deepcopy(before)
    moved["listeners"][0]["address"] = "0.0.0.0"  # the same port on every address
    r = router.admin("PUT", "/v1/config", moved)
    assert r.status_code == 422, r.text
    assert r.json()["problems"] == [
        {
            "path": "listeners[0].port",
            "message": f"cannot listen on 0.0.0.0:{port}: address already in use "
            f"(listener 'web' of this router holds 127.0.0.1:{port})",
        }
    ]
    assert served_by(router, port) == {"blue-1"}


def test_a_renamed_listener_keeps_its_port_and_two_listeners_can_swap_ports(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess]
) -> None:
    router = start(router_factory, apps)
    _, before = current(router)
    web_port, api_port = router.listener_port(), free_port()
    both = with_listener(before, "api", api_port, "green")
    assert router.admin("PUT", "/v1/config", both).status_code == 200
    swapped = copy.deepcopy(both)
    swapped["listeners"][0]["port"], swapped["listeners"][1]["port"] = api_port, web_port
    r = router.admin("PUT", "/v1/config", swapped)
    assert r.status_code == 200, r.text
    assert served_by(router, web_port) == {"green-1"}
    assert served_by(router, api_port) == {"blue-1"}
    renamed = copy.deepcopy(swapped)
    renamed["listeners"][0]["name"] = "shop"
    r = router.admin("PUT", "/v1/config", renamed)
    assert r.status_code == 200, r.text
    assert served_by(router, api_port) == {"blue-1"}
    assert set(router.admin("GET", "/v1/listeners").json()) == {"shop", "api"}


# -- dry run ------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_dry_run_refuses_a_port_another_program_holds_naming_path_and_port(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess], workers: int
) -> None:
    router = start(router_factory, apps, workers)
    generation, before = current(router)
    with held_port() as port:
        r = router.admin("PUT", "/v1/config?dry_run=1", with_listener(before, "api", port, "green"))
        assert r.status_code == 422, r.text
        [problem] = r.json()["problems"]
        assert problem["path"] == "listeners[1].port"
        assert f"127.0.0.1:{port}" in problem["message"]
        assert "address already in use" in problem["message"]
    assert current(router) == (generation, before)


@pytest.mark.parametrize("workers", [1, 2])
def test_dry_run_accepts_the_routers_own_ports_and_changes_nothing(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess], workers: int
) -> None:
    router = start(router_factory, apps, workers)
    generation, before = current(router)
    new_port = free_port()
    wanted = with_listener(before, "api", new_port, "green")
    wanted["listeners"][0]["default"]["forward"][0]["weight"] = 0
    wanted["listeners"][0]["default"]["forward"][1]["weight"] = 100
    for body in (before, wanted):
        r = router.admin("PUT", "/v1/config?dry_run=1", body)
        assert r.status_code == 200, r.text
        assert r.json() == {"valid": True, "generation": generation}
    assert current(router) == (generation, before)
    assert not listening(new_port)
    assert served_by(router, router.listener_port(), 40) == {"blue-1"}


def test_dry_run_reports_validation_problems_as_a_real_reload_does(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess]
) -> None:
    router = start(router_factory, apps)
    generation, before = current(router)
    bad = copy.deepcopy(before)
    bad["listeners"][0]["default"]["forward"][0]["target_group"] = "bleu"
    dry = router.admin("PUT", "/v1/config?dry_run=1", bad)
    assert dry.status_code == 422
    real = router.admin("PUT", "/v1/config", bad)
    assert real.status_code == 422
    assert dry.json()["problems"] == real.json()["problems"]
    assert dry.json()["problems"][0]["path"] == "listeners[0].default.forward[0].target_group"
    assert current(router) == (generation, before)


def test_a_dry_run_flag_that_is_not_a_boolean_is_refused_and_nothing_is_applied(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess]
) -> None:
    router = start(router_factory, apps)
    generation, before = current(router)
    wanted = copy.deepcopy(before)
    wanted["listeners"][0]["default"]["forward"][0]["weight"] = 7
    r = router.admin("PUT", "/v1/config?dry_run=yes", wanted)
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "dry_run"
    assert current(router) == (generation, before)


def test_router_client_check_config_raises_spec_error_with_the_path_and_passes_a_good_one(
    router_factory: RouterFactory, apps: tuple[AppProcess, AppProcess]
) -> None:
    router = start(router_factory, apps)
    generation, before = current(router)

    async def go(port: int) -> SpecError:
        async with RouterClient(router.admin_url, router.token) as client:
            await client.check_config(before)
            with pytest.raises(SpecError) as refused:
                await client.check_config(with_listener(before, "api", port, "green"))
            with pytest.raises(SpecError) as applied:
                await client.apply_config(with_listener(before, "api", port, "green"))
            assert applied.value.problems == refused.value.problems
            return refused.value

    with held_port() as port:
        error = asyncio.run(go(port))
    [problem] = error.problems
    assert problem.path == "listeners[1].port"
    assert f"127.0.0.1:{port}" in problem.message
    assert current(router) == (generation, before)
