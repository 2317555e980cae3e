"""Routing snapshots: weighted choice, sticky entries, re-weighing, rotation and fail-open."""

from __future__ import annotations

from collections import Counter
from itertools import cycle

import pytest

from sluicegate.errors import NotFoundError, SpecError
from sluicegate.router import MetricsRegistry, StickyCodec
from sluicegate.router._match import RequestView
from sluicegate.router._table import ForwardAction, Target, TargetGroup, build_route, reweigh
from sluicegate.spec import ListenerSpec, TargetGroupSpec


def groups() -> dict[str, TargetGroup]:
    out = {}
    for name, targets in (("blue", ["127.0.0.1:1", "127.0.0.1:2"]), ("green", ["127.0.0.1:3"])):
        g = TargetGroup(TargetGroupSpec(name=name, targets=targets))
        for t in targets:
            host, port = t.split(":")
            g.targets[t] = Target(host, int(port))
        g.refresh()
        out[name] = g
    return out


def listener(blue: int = 90, green: int = 10, sticky: bool = True) -> ListenerSpec:
    return ListenerSpec.model_validate(
        {
            "name": "web",
            "port": 8080,
            "rules": [
                {
                    "match": {"header": {"x-canary": "always"}},
                    "forward": [{"target_group": "green", "weight": 100}],
                }
            ],
            "default": {
                "forward": [
                    {"target_group": "blue", "weight": blue},
                    {"target_group": "green", "weight": green},
                ],
                "stickiness": {"enabled": sticky},
            },
        }
    )


def codecs(name: str) -> StickyCodec:
    return StickyCodec(b"k" * 32, name)


def test_weighted_pick_follows_the_cumulative_weights() -> None:
    route = build_route(listener(), groups(), MetricsRegistry(), codecs)
    action = route.default
    draws = cycle(i / 100 for i in range(100))
    action.rand = lambda: next(draws)
    picks = Counter(action.pick().group.name for _ in range(1000))
    assert picks == {"blue": 900, "green": 100}


def test_zero_weight_group_is_never_picked_and_not_sticky() -> None:
    route = build_route(listener(blue=100, green=0), groups(), MetricsRegistry(), codecs)
    assert {route.default.pick().group.name for _ in range(500)} == {"blue"}
    assert route.default.sticky_entry("green") is None
    assert route.default.sticky_entry("blue") is not None
    assert route.default.sticky_entry("nonexistent") is None


def test_reweigh_swaps_one_action_and_keeps_the_rest() -> None:
    gs, reg = groups(), MetricsRegistry()
    spec = listener()
    route = build_route(spec, gs, reg, codecs)
    new = reweigh(route, spec, {"blue": 0, "green": 100}, None, gs, reg, codecs)
    assert new.default.weights() == {"blue": 0, "green": 100}
    assert route.default.weights() == {"blue": 90, "green": 10}  # the old snapshot is intact
    assert new.rules == route.rules


@pytest.mark.parametrize(
    ("weights", "rule", "error"),
    [
        ({"purple": 5}, None, SpecError),
        ({"blue": 0, "green": 0}, None, SpecError),
        ({"blue": 1000}, None, SpecError),
        ({"green": 1}, 7, NotFoundError),
    ],
)
def test_bad_weights_are_refused(
    weights: dict[str, int], rule: int | None, error: type[Exception]
) -> None:
    gs, reg = groups(), MetricsRegistry()
    spec = listener()
    route = build_route(spec, gs, reg, codecs)
    with pytest.raises(error):
        reweigh(route, spec, weights, rule, gs, reg, codecs)


def test_rules_are_tried_in_order_before_the_default() -> None:
    route = build_route(listener(), groups(), MetricsRegistry(), codecs)
    canary = RequestView("/", "", "h", {"x-canary": ["always"]})
    assert route.choose(canary).weights() == {"green": 100}
    assert route.choose(RequestView("/", "", "h", {})) is route.default
    assert route.choose(None) is route.default


def test_round_robin_skips_unhealthy_targets_and_fails_open_when_none_is_healthy() -> None:
    blue = groups()["blue"]
    assert {blue.next_target().addr for _ in range(4)} == {"127.0.0.1:1", "127.0.0.1:2"}
    blue.targets["127.0.0.1:1"].healthy = False
    assert blue.refresh() is False
    assert {blue.next_target().addr for _ in range(4)} == {"127.0.0.1:2"}
    blue.targets["127.0.0.1:2"].healthy = False
    assert blue.refresh() is True  # just failed open
    assert blue.fail_open
    assert {blue.next_target().addr for _ in range(4)} == {"127.0.0.1:1", "127.0.0.1:2"}


def test_draining_targets_leave_rotation() -> None:
    blue = groups()["blue"]
    blue.targets["127.0.0.1:2"].draining = True
    blue.refresh()
    assert {blue.next_target().addr for _ in range(4)} == {"127.0.0.1:1"}


def test_next_target_excludes_the_failed_one_for_a_retry() -> None:
    blue = groups()["blue"]
    failed = blue.targets["127.0.0.1:1"]
    assert all(blue.next_target(exclude=failed) is not failed for _ in range(6))
    green = groups()["green"]
    assert green.next_target(exclude=green.targets["127.0.0.1:3"]) is None


def test_forward_action_without_stickiness_has_no_codec() -> None:
    route = build_route(listener(sticky=False), groups(), MetricsRegistry(), codecs)
    assert route.default.sticky is None
    assert isinstance(route.default, ForwardAction)


def test_decide_assigns_a_new_client_and_says_so_in_a_cookie() -> None:
    action = build_route(listener(blue=0, green=100), groups(), MetricsRegistry(), codecs).default
    entry, set_cookie = action.decide(None, now=1000)
    assert entry.group.name == "green"
    assert set_cookie is not None
    assert set_cookie.startswith(b"Set-Cookie: sluice_tg=green.87400.")  # 1000 s + 1 day
    assert set_cookie.endswith(b"; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax\r\n")


def test_decide_honours_a_genuine_cookie_and_sends_no_new_one() -> None:
    action = build_route(listener(blue=1, green=999), groups(), MetricsRegistry(), codecs).default
    value = codecs("sluice_tg").issue("blue", 5000)
    entry, set_cookie = action.decide(b"a=1; sluice_tg=" + value, now=1000)
    assert (entry.group.name, set_cookie) == ("blue", None)


def test_decide_rebalances_an_expired_cookie() -> None:
    action = build_route(listener(blue=0, green=100), groups(), MetricsRegistry(), codecs).default
    value = codecs("sluice_tg").issue("green", 999)
    entry, set_cookie = action.decide(b"sluice_tg=" + value, now=1000)
    assert entry.group.name == "green" and set_cookie is not None
