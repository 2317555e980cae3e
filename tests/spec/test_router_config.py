"""The router configuration: what a valid file means, and how every mistake is reported.

Each rejected document must raise SpecError whose problems name the field path of the
mistake, so a user can go straight to the line that needs fixing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sluicegate.errors import ConfigFileError, Problem, SpecError
from sluicegate.spec import RouterConfig, load_file, parse_document, parse_target

EXAMPLE_YAML = """\
listeners:
  - name: web
    port: 8080            # bind 127.0.0.1 by default, `address:` to change
    rules:                # ordered; first match wins
      - match: {header: {x-canary: "always"}}
        forward: [{target_group: green, weight: 100}]
    default:
      forward: [{target_group: blue, weight: 90}, {target_group: green, weight: 10}]
      stickiness: {enabled: true, duration: 1h}
target_groups:
  - name: blue
    targets: ["127.0.0.1:9001", "127.0.0.1:9003"]
    health_check: {path: /healthz, interval: 5s, timeout: 2s, healthy_threshold: 2,
                   unhealthy_threshold: 2}
    deregistration_delay: 30s
  - name: green
    targets: ["127.0.0.1:9002"]
admin: {port: 9900, token_env: SLUICE_ADMIN_TOKEN}
"""

MINIMAL: dict[str, Any] = {
    "listeners": [
        {"name": "web", "port": 8080, "default": {"forward": [{"target_group": "blue"}]}}
    ],
    "target_groups": [
        {"name": "blue", "targets": ["127.0.0.1:9001"]},
        {"name": "green", "targets": ["127.0.0.1:9002"]},
    ],
}


def doc() -> dict[str, Any]:
    """A fresh, valid document to break in one place."""
    return copy.deepcopy(MINIMAL)


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_document(RouterConfig, data, source="router.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


def write(tmp_path: Path, text: str | bytes, name: str = "router.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- a valid file ------------------------------------------------------------------------


def test_the_readme_example_loads_with_every_value_in_seconds_and_defaults_filled(
    tmp_path: Path,
) -> None:
    config = load_file(RouterConfig, write(tmp_path, EXAMPLE_YAML))

    (web,) = config.listeners
    assert (web.name, web.port, web.address) == ("web", 8080, "127.0.0.1")
    assert web.rules[0].match.header == {"x-canary": "always"}
    assert [(g.target_group, g.weight) for g in web.rules[0].forward] == [("green", 100)]
    assert [(g.target_group, g.weight) for g in web.default.forward] == [
        ("blue", 90),
        ("green", 10),
    ]
    assert web.default.stickiness.enabled is True
    assert web.default.stickiness.duration == 3600.0
    assert web.default.stickiness.cookie_name == "sluice_tg"
    assert web.rules[0].stickiness.enabled is False

    blue = config.target_group("blue")
    assert blue is not None
    assert blue.targets == ["127.0.0.1:9001", "127.0.0.1:9003"]
    assert (blue.health_check.path, blue.health_check.interval, blue.health_check.timeout) == (
        "/healthz",
        5.0,
        2.0,
    )
    assert blue.deregistration_delay == 30.0
    green = config.target_group("green")
    assert green is not None
    assert green.health_check.path == "/"
    assert green.health_check.matcher == "200-399"
    assert config.target_group("red") is None

    assert (config.admin.port, config.admin.address, config.admin.token_env) == (
        9900,
        "127.0.0.1",
        "SLUICE_ADMIN_TOKEN",
    )
    assert config.admin.public_metrics is False


def test_a_json_file_is_accepted_as_yaml(tmp_path: Path) -> None:
    config = load_file(RouterConfig, write(tmp_path, json.dumps(MINIMAL), "router.json"))
    assert config.listeners[0].port == 8080


def test_weight_defaults_to_1_and_weight_0_is_allowed_next_to_a_positive_one() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"] = [
        {"target_group": "blue"},
        {"target_group": "green", "weight": 0},
    ]
    config = parse_document(RouterConfig, data)
    assert [g.weight for g in config.listeners[0].default.forward] == [1, 0]


def test_the_config_is_frozen() -> None:
    config = parse_document(RouterConfig, doc())
    with pytest.raises(ValueError, match="frozen"):
        config.listeners[0].port = 1  # type: ignore[misc]


def test_an_empty_address_means_loopback_and_localhost_is_kept() -> None:
    data = doc()
    data["listeners"][0]["address"] = ""
    data["admin"] = {"address": "localhost"}
    config = parse_document(RouterConfig, data)
    assert config.listeners[0].address == "127.0.0.1"
    assert config.admin.address == "localhost"


# --- forward actions ---------------------------------------------------------------------


def test_weights_summing_to_zero_are_named_at_the_forward_list() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"] = [
        {"target_group": "blue", "weight": 0},
        {"target_group": "green", "weight": 0},
    ]
    assert only_problem(data) == (
        "listeners[0].default.forward",
        "at least one target group needs a weight above 0",
    )


def test_a_weight_above_999_is_rejected_as_on_alb() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"][0]["weight"] = 1000
    path, message = only_problem(data)
    assert path == "listeners[0].default.forward[0].weight"
    assert "999" in message


def test_a_negative_weight_is_rejected() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"][0]["weight"] = -1
    path, _ = only_problem(data)
    assert path == "listeners[0].default.forward[0].weight"


def test_duplicate_group_in_one_forward_is_named_at_the_second_occurrence() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"] = [
        {"target_group": "blue", "weight": 50},
        {"target_group": "blue", "weight": 50},
    ]
    assert only_problem(data) == (
        "listeners[0].default.forward[1].target_group",
        "target group 'blue' appears twice in one forward action",
    )


def test_an_empty_forward_list_is_rejected() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"] = []
    path, message = only_problem(data)
    assert path == "listeners[0].default.forward"
    assert "at least 1" in message


def test_more_than_five_groups_in_one_forward_are_rejected() -> None:
    data = doc()
    data["target_groups"] = [{"name": f"g{i}"} for i in range(6)]
    data["listeners"][0]["default"]["forward"] = [{"target_group": f"g{i}"} for i in range(6)]
    path, message = only_problem(data)
    assert path == "listeners[0].default.forward"
    assert "at most 5" in message


def test_unknown_target_group_in_default_forward_is_named_with_its_path() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"].append({"target_group": "red"})
    assert only_problem(data) == (
        "listeners[0].default.forward[1].target_group",
        "unknown target group 'red' (known: blue, green)",
    )


def test_unknown_target_group_in_a_rule_is_named_with_its_path() -> None:
    data = doc()
    data["listeners"][0]["rules"] = [
        {"match": {"path_prefix": "/api"}, "forward": [{"target_group": "blue"}]},
        {"match": {"path_prefix": "/v2"}, "forward": [{"target_group": "red"}]},
    ]
    assert only_problem(data) == (
        "listeners[0].rules[1].forward[0].target_group",
        "unknown target group 'red' (known: blue, green)",
    )


def test_every_unknown_target_group_is_reported_not_just_the_first() -> None:
    data = doc()
    data["listeners"][0]["default"]["forward"] = [{"target_group": "red"}]
    data["listeners"].append(
        {"name": "api", "port": 8081, "default": {"forward": [{"target_group": "pink"}]}}
    )
    assert [path for path, _ in problems_of(data)] == [
        "listeners[0].default.forward[0].target_group",
        "listeners[1].default.forward[0].target_group",
    ]


# --- stickiness --------------------------------------------------------------------------


@pytest.mark.parametrize("duration", ["1s", "7d", 1, "12h"])
def test_stickiness_duration_between_1s_and_7d_is_accepted(duration: object) -> None:
    data = doc()
    data["listeners"][0]["default"]["stickiness"] = {"enabled": True, "duration": duration}
    parse_document(RouterConfig, data)


@pytest.mark.parametrize("duration", ["500ms", "0s", "8d", "169h"])
def test_stickiness_duration_outside_1s_to_7d_is_rejected(duration: str) -> None:
    data = doc()
    data["listeners"][0]["default"]["stickiness"] = {"enabled": True, "duration": duration}
    assert only_problem(data) == (
        "listeners[0].default.stickiness.duration",
        "stickiness duration must be between 1s and 7d (as on ALB)",
    )


def test_stickiness_duration_that_is_not_a_duration_is_named() -> None:
    data = doc()
    data["listeners"][0]["default"]["stickiness"] = {"duration": "an hour"}
    path, message = only_problem(data)
    assert path == "listeners[0].default.stickiness.duration"
    assert message == "'an hour' is not a duration; write 500ms, 5s, 2m, 1h or 7d"


def test_stickiness_cookie_name_must_be_a_cookie_token() -> None:
    data = doc()
    data["listeners"][0]["default"]["stickiness"] = {"cookie_name": "my cookie"}
    assert only_problem(data) == (
        "listeners[0].default.stickiness.cookie_name",
        "'my cookie' is not a valid cookie name",
    )


# --- rules and matches -------------------------------------------------------------------


def test_a_rule_without_any_condition_is_rejected() -> None:
    data = doc()
    data["listeners"][0]["rules"] = [{"match": {}, "forward": [{"target_group": "blue"}]}]
    assert only_problem(data) == (
        "listeners[0].rules[0].match",
        "a rule needs at least one condition",
    )


def test_match_values_are_a_glob_or_a_list_of_globs() -> None:
    data = doc()
    data["listeners"][0]["rules"] = [
        {
            "match": {
                "host": ["*.example.com", "example.com"],
                "cookie": {"beta": "yes"},
                "query": {"v": ["2", "3"]},
            },
            "forward": [{"target_group": "green"}],
        }
    ]
    match = parse_document(RouterConfig, data).listeners[0].rules[0].match
    assert match.host == ["*.example.com", "example.com"]
    assert match.cookie == {"beta": "yes"}
    assert match.query == {"v": ["2", "3"]}


@pytest.mark.parametrize("value", [5, [], ["ok", 3], {"a": "b"}])
def test_a_match_value_that_is_not_a_glob_is_named_once_at_its_key(value: object) -> None:
    data = doc()
    data["listeners"][0]["rules"] = [
        {"match": {"header": {"x-canary": value}}, "forward": [{"target_group": "green"}]}
    ]
    assert only_problem(data) == (
        "listeners[0].rules[0].match.header.x-canary",
        "expected a glob pattern or a non-empty list of glob patterns",
    )


def test_a_header_name_with_a_space_is_rejected() -> None:
    data = doc()
    data["listeners"][0]["rules"] = [
        {"match": {"header": {"x canary": "1"}}, "forward": [{"target_group": "green"}]}
    ]
    assert only_problem(data) == (
        "listeners[0].rules[0].match.header",
        "'x canary' is not a valid header name",
    )


def test_path_prefix_must_start_with_a_slash() -> None:
    data = doc()
    data["listeners"][0]["rules"] = [
        {"match": {"path_prefix": "api"}, "forward": [{"target_group": "green"}]}
    ]
    assert only_problem(data) == (
        "listeners[0].rules[0].match.path_prefix",
        "path_prefix must start with /",
    )


# --- listeners ---------------------------------------------------------------------------


def test_two_listeners_on_the_same_port_name_the_second_ones_port() -> None:
    data = doc()
    data["listeners"].append(
        {"name": "api", "port": 8080, "default": {"forward": [{"target_group": "blue"}]}}
    )
    assert only_problem(data) == (
        "listeners[1].port",
        "port 8080 is already used by listener 'web'",
    )


def test_two_listeners_with_the_same_name_name_the_second_ones_name() -> None:
    data = doc()
    data["listeners"].append(
        {"name": "web", "port": 8081, "default": {"forward": [{"target_group": "blue"}]}}
    )
    assert only_problem(data) == (
        "listeners[1].name",
        "listener 'web' is already defined at listeners[0]",
    )


def test_admin_port_equal_to_a_listener_port_is_named_at_admin_port() -> None:
    data = doc()
    data["admin"] = {"port": 8080}
    assert only_problem(data) == (
        "admin.port",
        "admin port 8080 is also the port of listener 'web'",
    )


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_listener_port_outside_1_to_65535_is_rejected(port: int) -> None:
    data = doc()
    data["listeners"][0]["port"] = port
    path, _ = only_problem(data)
    assert path == "listeners[0].port"


@pytest.mark.parametrize("address", ["0.0.0.0", "::1", "10.1.2.3"])
def test_a_listener_may_bind_any_ip_address(address: str) -> None:
    data = doc()
    data["listeners"][0]["address"] = address
    assert parse_document(RouterConfig, data).listeners[0].address == address


def test_a_listener_address_that_is_not_an_ip_is_named() -> None:
    data = doc()
    data["listeners"][0]["address"] = "example.com"
    assert only_problem(data) == ("listeners[0].address", "'example.com' is not an IP address")


def test_an_admin_address_that_is_not_an_ip_is_named() -> None:
    data = doc()
    data["admin"] = {"address": "256.0.0.1"}
    assert only_problem(data) == ("admin.address", "'256.0.0.1' is not an IP address")


@pytest.mark.parametrize("name", ["-web", "web site", "", "x" * 64])
def test_a_listener_name_must_be_a_simple_name(name: str) -> None:
    data = doc()
    data["listeners"][0]["name"] = name
    path, _ = only_problem(data)
    assert path == "listeners[0].name"


def test_an_empty_config_is_valid_so_a_control_plane_can_start_its_router_first() -> None:
    config = RouterConfig.model_validate({})
    assert (config.listeners, config.target_groups) == ([], [])


def test_missing_required_fields_are_named() -> None:
    data = doc()
    del data["listeners"][0]["default"]
    del data["listeners"][0]["port"]
    assert problems_of(data) == [
        ("listeners[0].port", "Field required"),
        ("listeners[0].default", "a listener needs a default action (or a redirect)"),
    ]


# --- target groups -----------------------------------------------------------------------


def test_two_target_groups_with_the_same_name_name_the_second() -> None:
    data = doc()
    data["target_groups"].append({"name": "blue"})
    assert only_problem(data) == (
        "target_groups[2].name",
        "target group 'blue' is already defined at target_groups[0]",
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("127.0.0.1", "target '127.0.0.1' must be host:port"),
        (":9001", "target ':9001' must be host:port"),
        ("127.0.0.1:", "target '127.0.0.1:' has an invalid port"),
        ("127.0.0.1:http", "target '127.0.0.1:http' has an invalid port"),
        ("127.0.0.1:0", "target '127.0.0.1:0' has an invalid port"),
        ("127.0.0.1:65536", "target '127.0.0.1:65536' has an invalid port"),
        ("127.0.0.1:-1", "target '127.0.0.1:-1' has an invalid port"),
        ("127.0.0.1:９００１", "target '127.0.0.1:９００１' has an invalid port"),
    ],
)
def test_a_bad_target_string_is_named_at_its_index(target: str, message: str) -> None:
    data = doc()
    data["target_groups"][0]["targets"] = ["127.0.0.1:9001", target]
    assert only_problem(data) == ("target_groups[0].targets[1]", message)


def test_a_target_listed_twice_is_named_at_the_second_occurrence() -> None:
    data = doc()
    data["target_groups"][0]["targets"] = ["127.0.0.1:9001", "127.0.0.1:9001"]
    assert only_problem(data) == (
        "target_groups[0].targets[1]",
        "target '127.0.0.1:9001' is listed twice",
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("127.0.0.1:9001", ("127.0.0.1", 9001)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("app.internal:65535", ("app.internal", 65535)),
    ],
)
def test_parse_target_splits_host_and_port(target: str, expected: tuple[str, int]) -> None:
    assert parse_target(target) == expected


def test_a_target_group_may_start_empty_and_get_targets_later() -> None:
    data = doc()
    data["target_groups"][0]["targets"] = []
    assert parse_document(RouterConfig, data).target_groups[0].targets == []


def test_an_unknown_algorithm_is_named() -> None:
    data = doc()
    data["target_groups"][0]["algorithm"] = "random"
    path, message = only_problem(data)
    assert path == "target_groups[0].algorithm"
    assert "'round_robin'" in message
    assert "'least_outstanding_requests'" in message


# --- health checks -----------------------------------------------------------------------


def health(**fields: object) -> dict[str, Any]:
    data = doc()
    data["target_groups"][0]["health_check"] = fields
    return data


@pytest.mark.parametrize("matcher", ["200", "200-399", "200,204", "200, 301-302", "100-599"])
def test_health_check_matcher_accepts_alb_forms(matcher: str) -> None:
    parse_document(RouterConfig, health(matcher=matcher))


@pytest.mark.parametrize("matcher", ["", "2xx", "200-", "-399", "200;204", "99", "600", "2000"])
def test_health_check_matcher_in_another_form_is_named(matcher: str) -> None:
    assert only_problem(health(matcher=matcher)) == (
        "target_groups[0].health_check.matcher",
        f"matcher {matcher!r} must look like 200, 200-399 or 200,204",
    )


def test_health_check_matcher_range_that_ends_before_it_starts_is_named() -> None:
    assert only_problem(health(matcher="399-200")) == (
        "target_groups[0].health_check.matcher",
        "matcher '399-200' has a range that ends before it starts",
    )


@pytest.mark.parametrize(
    ("matcher", "healthy", "unhealthy"),
    [
        ("200-399", [200, 301, 399], [199, 400, 500]),
        ("200,204", [200, 204], [201, 203, 205]),
        ("200, 300-302", [200, 300, 302], [303, 404]),
    ],
)
def test_healthy_status_follows_the_matcher(
    matcher: str, healthy: list[int], unhealthy: list[int]
) -> None:
    check = parse_document(RouterConfig, health(matcher=matcher)).target_groups[0].health_check
    assert [check.healthy_status(s) for s in healthy] == [True] * len(healthy)
    assert [check.healthy_status(s) for s in unhealthy] == [False] * len(unhealthy)


def test_health_check_timeout_above_interval_is_rejected() -> None:
    assert only_problem(health(interval="2s", timeout="3s")) == (
        "target_groups[0].health_check.timeout",
        "timeout (3s) must not exceed interval (2s)",
    )


@pytest.mark.parametrize(("interval", "timeout"), [("1s", 1.0), ("500ms", 0.5), ("10s", 2.0)])
def test_an_unset_health_check_timeout_is_at_most_the_interval(
    interval: str, timeout: float
) -> None:
    config = parse_document(RouterConfig, health(interval=interval))
    assert config.target_groups[0].health_check.timeout == timeout


def test_health_check_timeout_equal_to_interval_is_accepted() -> None:
    parse_document(RouterConfig, health(interval="2s", timeout="2s"))


def test_health_check_interval_of_zero_is_rejected() -> None:
    assert only_problem(health(interval=0, timeout=0)) == (
        "target_groups[0].health_check",
        "interval and timeout must be above 0",
    )


def test_health_check_path_must_start_with_a_slash() -> None:
    assert only_problem(health(path="healthz")) == (
        "target_groups[0].health_check.path",
        "health check path must start with /",
    )


@pytest.mark.parametrize("field", ["healthy_threshold", "unhealthy_threshold"])
@pytest.mark.parametrize("value", [0, 11])
def test_health_check_thresholds_are_between_1_and_10(field: str, value: int) -> None:
    path, _ = only_problem(health(**{field: value}))
    assert path == f"target_groups[0].health_check.{field}"


def test_a_non_finite_deregistration_delay_is_rejected() -> None:
    data = doc()
    data["target_groups"][0]["deregistration_delay"] = float("inf")
    assert only_problem(data) == (
        "target_groups[0].deregistration_delay",
        "inf is not a finite duration",
    )


# --- unknown keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path", "valid"),
    [
        (
            lambda d: d,
            "weight",
            "listeners, target_groups, admin, timeouts, limits, sticky_secret_env, metrics_window",
        ),
        (
            lambda d: d["listeners"][0],
            "listeners[0].weight",
            "name, port, address, tls, redirect, trusted_proxies, max_connections, upgrades, rules,"
            " default",
        ),
        (
            lambda d: d["listeners"][0]["default"],
            "listeners[0].default.weight",
            "forward, stickiness",
        ),
        (
            lambda d: d["target_groups"][1],
            "target_groups[1].weight",
            "name, targets, algorithm, health_check, deregistration_delay",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_path_and_the_valid_keys(
    where: Any, path: str, valid: str
) -> None:
    data = doc()
    where(data)["weight"] = 5
    assert only_problem(data) == (path, f"unknown key (valid: {valid})")


def test_a_misspelt_health_check_key_is_named_with_the_key_it_resembles() -> None:
    assert only_problem(health(intervall="5s")) == (
        "target_groups[0].health_check.intervall",
        "unknown key; did you mean 'interval'? (valid: enabled, path, interval, timeout,"
        " healthy_threshold, unhealthy_threshold, matcher)",
    )


# --- several problems, and the error's message -------------------------------------------


def test_every_problem_in_a_document_is_reported_at_once() -> None:
    data = doc()
    data["listeners"][0]["port"] = 0
    data["target_groups"][0]["targets"] = ["nope"]
    data["admin"] = {"colour": "red"}
    assert [path for path, _ in problems_of(data)] == [
        "listeners[0].port",
        "target_groups[0].targets[0]",
        "admin.colour",
    ]


def test_the_error_message_names_the_file_and_lists_each_problem() -> None:
    data = doc()
    data["admin"] = {"port": 8080}
    with pytest.raises(SpecError) as info:
        parse_document(RouterConfig, data, source="router.yaml")
    assert str(info.value) == (
        "router.yaml: 1 problem:\n"
        "  - admin.port: admin port 8080 is also the port of listener 'web'"
    )
    assert info.value.source == "router.yaml"


# --- files -------------------------------------------------------------------------------


def test_bad_yaml_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "listeners:\n  - name: web\n    port: [8080\ntarget_groups: []\n")
    with pytest.raises(ConfigFileError) as info:
        load_file(RouterConfig, path)
    (problem,) = info.value.problems
    assert problem.path == ""
    assert problem.message.startswith("not valid YAML at line 4, column 14")
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 1 problem:")


def test_a_tab_in_yaml_indentation_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "listeners:\n\t- name: web\n")
    with pytest.raises(ConfigFileError, match=r"not valid YAML at line 2, column 1"):
        load_file(RouterConfig, path)


def test_a_missing_file_is_named_and_the_reason_given(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigFileError) as info:
        load_file(RouterConfig, path)
    assert info.value.problems == (Problem("", "cannot read file: No such file or directory"),)
    assert info.value.source == str(path)


def test_a_directory_instead_of_a_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read file: Is a directory"):
        load_file(RouterConfig, tmp_path)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, b"listeners: \xff\xfe\n")
    with pytest.raises(ConfigFileError) as info:
        load_file(RouterConfig, path)
    assert info.value.problems[0].message.startswith("cannot read file: not UTF-8 text")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n"])
def test_a_file_without_a_mapping_at_the_top_is_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_file(RouterConfig, path)
    assert info.value.problems == (Problem("", "expected a mapping at the top level"),)
    assert info.value.source == str(path)


def test_validation_problems_in_a_file_carry_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE_YAML.replace("weight: 90", "weight: 0").replace("10}", "0}"))
    with pytest.raises(SpecError) as info:
        load_file(RouterConfig, path)
    assert info.value.source == str(path)
    assert [p.path for p in info.value.problems] == ["listeners[0].default.forward"]


def test_parse_document_without_a_source_still_explains_a_non_mapping() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_document(RouterConfig, ["not", "a", "mapping"])
    assert info.value.source == "<input>"
