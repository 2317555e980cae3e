"""TrafficControl: service routes become router config; applied weights are read back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest

from sluicegate.errors import Problem, SluicegateError, SpecError
from sluicegate.router import RouterClient
from sluicegate.router.traffic import (
    RevisionGroup,
    RouterTraffic,
    ServiceRoute,
    refusal,
    router_config,
)
from sluicegate.spec import RouterConfig, parse_document
from tests._support import free_port
from tests._support import router_config as base_router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


def shop(
    v1: int,
    v2: int,
    port: int = 8080,
    test_port: int | None = 8081,
    endpoints: tuple[str, str] = ("127.0.0.1:9001", "127.0.0.1:9002"),
) -> ServiceRoute:
    return ServiceRoute(
        service="shop",
        port=port,
        test_port=test_port,
        test_revision="v2",
        groups=(RevisionGroup("v1", (endpoints[0],), v1), RevisionGroup("v2", (endpoints[1],), v2)),
        health_path="/healthz",
        health_interval=1.0,
        sticky=True,
    )


def test_each_revision_becomes_a_target_group_and_the_config_validates() -> None:
    config = router_config([shop(90, 10)], {"port": 9900})
    parsed = parse_document(RouterConfig, config)
    assert [g.name for g in parsed.target_groups] == ["shop.v1", "shop.v2"]
    web, test = parsed.listeners
    assert (web.name, web.port, test.name, test.port) == ("shop", 8080, "shop-test", 8081)
    assert [(f.target_group, f.weight) for f in web.default.forward] == [
        ("shop.v1", 90),
        ("shop.v2", 10),
    ]
    assert web.default.stickiness.enabled
    assert [(f.target_group, f.weight) for f in test.default.forward] == [("shop.v2", 100)]


def test_a_route_with_no_weight_keeps_only_its_test_listener() -> None:
    config = router_config([shop(0, 0)], {"port": 9900})
    assert [lst["name"] for lst in config["listeners"]] == ["shop-test"]
    assert [g["name"] for g in config["target_groups"]] == ["shop.v1", "shop.v2"]


def test_a_route_with_no_revision_is_refused() -> None:
    route = ServiceRoute(service="shop", port=8080, groups=())
    with pytest.raises(SluicegateError, match="no revision"):
        router_config([route], {"port": 9900})


def test_base_keys_other_than_routing_are_kept() -> None:
    config = router_config([shop(100, 0)], {"port": 9900}, {"timeouts": {"request": 5}})
    assert config["timeouts"] == {"request": 5}


def test_router_traffic_applies_routes_and_requests_follow(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    v1, v2 = app_factory(version="v1"), app_factory(version="v2")
    router = router_factory(base_router_config({"boot": [v1]}))
    port, test_port = free_port(), free_port()
    route = shop(100, 0, port, test_port, (v1.address, v2.address))

    async def go(r: ServiceRoute) -> dict[str, int]:
        async with RouterClient(router.admin_url, router.token) as client:
            traffic = RouterTraffic(client)
            await traffic.apply([r])
            return await traffic.weights("shop")

    assert asyncio.run(go(route)) == {"v1": 100, "v2": 0}
    assert Counter(x.version for x in get_many(port, 20)) == {"v1": 20}
    assert Counter(x.version for x in get_many(test_port, 20)) == {"v2": 20}
    assert asyncio.run(go(shop(0, 100, port, test_port, (v1.address, v2.address)))) == {
        "v1": 0,
        "v2": 100,
    }
    assert Counter(x.version for x in get_many(port, 20)) == {"v2": 20}


def test_a_service_tls_block_goes_on_its_listener_and_test_listener() -> None:
    tls = {
        "certificates": [{"cert": "/etc/shop.pem", "key": "/etc/shop.key"}],
        "min_version": "1.3",
    }
    route = dataclasses.replace(shop(100, 0), tls=tls)
    parsed = parse_document(RouterConfig, router_config([route], {"port": 9900}))
    for listener in parsed.listeners:
        assert listener.tls is not None
        assert listener.tls.min_version == "1.3"
        assert listener.tls.certificates[0].cert == "/etc/shop.pem"


def test_a_router_refusal_of_a_certificate_names_the_service_spec_field() -> None:
    desired = router_config([shop(100, 0)], {"port": 9900})
    exc = SpecError([Problem("listeners[1].tls.certificates[0].key", "shop.key: no such file")])
    refused = refusal(exc, desired)
    assert [(p.path, p.message) for p in refused.problems] == [
        ("listener.tls.certificates[0].key", "shop.key: no such file (service 'shop')")
    ]


def test_a_service_redirect_port_becomes_a_redirect_listener_to_its_https_port() -> None:
    tls = {"certificates": [{"cert": "/etc/shop.pem", "key": "/etc/shop.key"}]}
    route = dataclasses.replace(shop(100, 0, port=8443), tls=tls, redirect_port=8080)
    parsed = parse_document(RouterConfig, router_config([route], {"port": 9900}))
    redirect = next(lst for lst in parsed.listeners if lst.name == "shop-redirect")
    assert (redirect.port, redirect.tls, redirect.default) == (8080, None, None)
    assert redirect.redirect is not None
    assert (redirect.redirect.to_port, redirect.redirect.status) == (8443, 308)
    exc = SpecError([Problem("listeners[1].port", "cannot listen on 127.0.0.1:8080: in use")])
    refused = refusal(exc, router_config([route], {"port": 9900}))
    assert refused.problems[0].path == "listener.redirect_port"
    assert refused.services == ("shop",)
