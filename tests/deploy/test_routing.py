"""route_for: a service's traffic derived from what the store recorded (pure)."""

from __future__ import annotations

from sluicegate.deploy import DeploymentState, Phase
from sluicegate.deploy._routing import route_for, state_from_json, state_to_json
from sluicegate.spec.service import ServiceSpec
from sluicegate.store import Deployment

SPEC = ServiceSpec.model_validate(
    {
        "service": "shop",
        "listener": {"port": 8080, "test_port": 8081},
        "compute": {"local": {"command": ["app", "--port", "{port}"]}},
    }
)


def endpoints(revision: str) -> list[str]:
    return {"v1": ["127.0.0.1:1"], "v2": ["127.0.0.1:2"]}.get(revision, [])


def active(state: DeploymentState, frm: str | None = "v1") -> Deployment:
    return Deployment(
        "d-1",
        "shop",
        "v2",
        frm,
        {},
        state_to_json(state),
        state.phase.value,
        "in_progress",
        True,
        0.0,
        0.0,
        1,
    )


def test_without_a_deployment_the_current_revision_takes_everything() -> None:
    route = route_for(SPEC, "v1", None, endpoints)
    assert route is not None and route.weights() == {"v1": 100}
    assert route.test_revision == "v1"


def test_nothing_running_means_no_route() -> None:
    assert route_for(SPEC, None, None, endpoints) is None


def test_mid_shift_blue_and_green_share_by_the_recorded_weight() -> None:
    state = DeploymentState(Phase.SHIFTING, True, 0.0, green_weight=30, test_traffic_on_green=True)
    route = route_for(SPEC, "v1", active(state), endpoints)
    assert route is not None
    assert route.weights() == {"v1": 70, "v2": 30}
    assert route.test_revision == "v2"


def test_green_waits_at_zero_while_hooks_use_the_test_listener() -> None:
    state = DeploymentState(Phase.BEFORE_ALLOW_TRAFFIC, True, 0.0, test_traffic_on_green=True)
    route = route_for(SPEC, "v1", active(state), endpoints)
    assert route is not None and route.weights() == {"v1": 100, "v2": 0}


def test_a_rollback_in_progress_sends_everything_back_to_blue() -> None:
    state = DeploymentState(Phase.ROLLING_BACK, True, 0.0, green_weight=0, ending=Phase.ROLLED_BACK)
    route = route_for(SPEC, "v1", active(state), endpoints)
    assert route is not None and route.weights() == {"v1": 100}


def test_state_round_trips_through_json() -> None:
    state = DeploymentState(
        Phase.ROLLING_BACK,
        True,
        5.0,
        step_index=2,
        green_weight=10,
        ending=Phase.ROLLED_BACK,
        reason="alarm x",
    )
    assert state_from_json(state_to_json(state)) == state


FLAGGED = ServiceSpec.model_validate(
    {
        "service": "shop",
        "listener": {
            "port": 8080,
            "test_port": 8081,
            "flag_route": {"key": "new-checkout", "variant": "on", "user_from": {"cookie": "uid"}},
        },
        "compute": {"local": {"command": ["app", "--port", "{port}"]}},
    }
)


def test_a_flag_route_sends_the_flags_users_to_green_once_green_takes_test_traffic() -> None:
    from sluicegate.router.traffic import router_config

    state = DeploymentState(Phase.BEFORE_ALLOW_TRAFFIC, True, 0.0, test_traffic_on_green=True)
    route = route_for(FLAGGED, "v1", active(state), endpoints)
    assert route is not None and route.green == "v2"
    [listener, _test] = router_config([route], {"port": 9900})["listeners"]
    assert listener["rules"] == [
        {
            "match": {
                "flag": {"key": "new-checkout", "variant": "on", "user_from": {"cookie": "uid"}}
            },
            "forward": [{"target_group": "shop.v2", "weight": 100}],
        }
    ]
    assert [f["weight"] for f in listener["default"]["forward"]] == [100, 0]


def test_no_flag_route_before_green_is_routable_nor_after_the_deployment() -> None:
    from sluicegate.router.traffic import router_config

    provisioning = DeploymentState(Phase.HEALTH_GATE, True, 0.0)
    route = route_for(FLAGGED, "v1", active(provisioning), endpoints)
    assert route is not None and route.green is None
    assert "rules" not in router_config([route], {"port": 9900})["listeners"][0]
    after = route_for(FLAGGED, "v2", None, endpoints)
    assert after is not None and "rules" not in router_config([after], {})["listeners"][0]
