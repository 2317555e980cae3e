"""The service spec: what `sluice apply -f shop.yaml` accepts, and how each mistake is named.

Every rejected document raises SpecError whose problems carry the dotted field path.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.spec import (
    PREDEFINED_CONFIGS,
    CanaryConfig,
    LinearConfig,
    ServiceSpec,
    StepsConfig,
    expand_placeholders,
    load_file,
    parse_document,
)

ISSUE_EXAMPLE = """\
service: shop
listener: {port: 8080, test_port: 8081}     # test listener for pre-traffic checks
health_check: {path: /healthz, interval: 2s}
stickiness: {enabled: true, duration: 1h}
compute:
  local:                                      # default backend: processes on this machine
    command: ["python", "examples/shop/app.py", "--port", "{port}"]
    env: {SHOP_VERSION: "{revision}"}
    replicas: 2
deployment:
  config: Canary10Percent5Minutes
  termination_wait: 5m                       # keep the old version this long after success
  hooks:
    before_allow_traffic: [{http: {path: /smoke, expect_status: 200}}]   # runs via test_port
    after_allow_traffic:  [{command: ["./scripts/notify.sh"]}]
"""

MINIMAL: dict[str, Any] = {
    "service": "shop",
    "listener": {"port": 8080},
    "compute": {"local": {"command": ["app", "--port", "{port}"]}},
}


def doc(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data.update(copy.deepcopy(changes))
    return data


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_document(ServiceSpec, data, source="shop.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


def with_config(config: Any) -> dict[str, Any]:
    return doc(deployment={"config": config})


# --- valid documents -------------------------------------------------------------------------


def test_the_issue_example_loads_with_durations_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    spec = load_file(ServiceSpec, path)

    assert spec.service == "shop"
    assert (spec.listener.port, spec.listener.test_port) == (8080, 8081)
    assert (spec.health_check.path, spec.health_check.interval) == ("/healthz", 2.0)
    assert (spec.stickiness.enabled, spec.stickiness.duration) == (True, 3600.0)
    local = spec.compute.local
    assert local is not None and spec.compute.external is None
    assert local.command == ["python", "examples/shop/app.py", "--port", "{port}"]
    assert (local.env, local.replicas, local.stop_grace) == (
        {"SHOP_VERSION": "{revision}"},
        2,
        10.0,
    )
    dep = spec.deployment
    assert (dep.config, dep.termination_wait, dep.health_timeout) == (
        "Canary10Percent5Minutes",
        300.0,
        300.0,
    )
    (before,) = dep.hooks.before_allow_traffic
    assert before.http is not None
    assert (before.http.path, before.http.expect_status, before.effective_timeout) == (
        "/smoke",
        200,
        30.0,
    )
    (after,) = dep.hooks.after_allow_traffic
    assert (after.command, after.effective_timeout) == (["./scripts/notify.sh"], 300.0)


def test_defaults_all_at_once_five_minute_waits_no_hooks_one_replica() -> None:
    spec = parse_document(ServiceSpec, doc())
    assert spec.deployment.config == "AllAtOnce"
    assert (spec.deployment.termination_wait, spec.deployment.health_timeout) == (300.0, 300.0)
    assert spec.deployment.hooks.before_allow_traffic == []
    assert spec.compute.local is not None and spec.compute.local.replicas == 1
    assert spec.listener.test_port is None
    assert spec.stickiness.enabled is False


def test_external_compute_lists_endpoints_per_revision() -> None:
    spec = parse_document(
        ServiceSpec,
        doc(compute={"external": {"revisions": {"v1": ["127.0.0.1:9001", "127.0.0.1:9002"]}}}),
    )
    assert spec.compute.external is not None
    assert spec.compute.external.revisions == {"v1": ["127.0.0.1:9001", "127.0.0.1:9002"]}


def test_a_parsed_spec_round_trips_through_its_dump_and_is_frozen() -> None:
    data = with_config({"steps": [{"weight": 5, "pause": "30s"}, {"pause": "until_promoted"}]})
    spec = parse_document(ServiceSpec, data)
    assert parse_document(ServiceSpec, spec.model_dump()) == spec
    with pytest.raises(ValueError, match="frozen"):
        spec.service = "other"  # type: ignore[misc]


# --- deployment.config ------------------------------------------------------------------------


@pytest.mark.parametrize("name", PREDEFINED_CONFIGS)
def test_every_predefined_name_is_accepted(name: str) -> None:
    assert parse_document(ServiceSpec, with_config(name)).deployment.config == name


def test_the_verbatim_codedeploy_spelling_is_stored_as_the_short_name() -> None:
    spec = parse_document(
        ServiceSpec, with_config("CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
    )
    assert spec.deployment.config == "Linear10PercentEvery1Minute"


def test_an_unknown_name_is_refused_with_the_known_names_listed() -> None:
    path, message = only_problem(with_config("Canary10Percent10Minutes"))
    assert path == "deployment.config"
    assert message == (
        "unknown deployment config 'Canary10Percent10Minutes'; the predefined ones are"
        " AllAtOnce, Canary10Percent5Minutes, Canary10Percent15Minutes,"
        " Linear10PercentEvery1Minute, Linear10PercentEvery3Minutes"
        " (or write canary:, linear: or steps:)"
    )


def test_custom_canary_and_linear_take_percent_and_interval() -> None:
    canary = parse_document(
        ServiceSpec, with_config({"canary": {"percent": 25, "interval": "45m"}})
    )
    assert canary.deployment.config == CanaryConfig.model_validate(
        {"canary": {"percent": 25, "interval": 2700}}
    )
    linear = parse_document(ServiceSpec, with_config({"linear": {"percent": 20, "interval": "2s"}}))
    assert isinstance(linear.deployment.config, LinearConfig)
    assert linear.deployment.config.linear.interval == 2.0


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"canary": {"percent": 0, "interval": "5m"}}, "deployment.config.canary.percent"),
        ({"canary": {"percent": 100, "interval": "5m"}}, "deployment.config.canary.percent"),
        ({"linear": {"percent": 10, "interval": 0}}, "deployment.config.linear.interval"),
        ({"linear": {"percent": 10}}, "deployment.config.linear.interval"),
        ({"canary": {"percent": 10, "interval": "1m", "x": 1}}, "deployment.config.canary.x"),
    ],
)
def test_custom_canary_and_linear_mistakes_name_the_field(config: Any, path: str) -> None:
    assert only_problem(with_config(config))[0] == path


def test_a_config_of_an_unknown_shape_says_what_is_expected() -> None:
    assert only_problem(with_config({"bluegreen": {}})) == (
        "deployment.config",
        "expected a predefined config name, {canary: {percent, interval}},"
        " {linear: {percent, interval}} or {steps: [...]}",
    )


def test_steps_with_weights_pauses_and_a_manual_gate() -> None:
    spec = parse_document(
        ServiceSpec,
        with_config(
            {
                "steps": [
                    {"weight": 5, "pause": "30s"},
                    {"weight": 25, "pause": "2m"},
                    {"pause": "until_promoted"},
                    {"weight": 100},
                ]
            }
        ),
    )
    config = spec.deployment.config
    assert isinstance(config, StepsConfig)
    assert [(s.weight, s.pause) for s in config.steps] == [
        (5, 30.0),
        (25, 120.0),
        (None, "until_promoted"),
        (100, None),
    ]


def test_step_weights_may_not_go_down() -> None:
    steps = [{"weight": 50, "pause": "1m"}, {"pause": "1m"}, {"weight": 20}]
    assert only_problem(with_config({"steps": steps})) == (
        "deployment.config.steps[2].weight",
        "weight 20 is below the 50 of steps[0]; weights may only grow (use rollback to go back)",
    )


@pytest.mark.parametrize(
    ("steps", "path", "fragment"),
    [
        ([{"weight": 101}], "deployment.config.steps[0].weight", "less than or equal to 100"),
        ([{"weight": -1}], "deployment.config.steps[0].weight", "greater than or equal to 0"),
        ([{}], "deployment.config.steps[0]", "a step needs a weight, a pause, or both"),
        ([{"pause": "soon"}], "deployment.config.steps[0].pause", "(or until_promoted)"),
        ([], "deployment.config.steps", "at least 1 item"),
    ],
)
def test_step_mistakes_name_the_step(steps: Any, path: str, fragment: str) -> None:
    got_path, message = only_problem(with_config({"steps": steps}))
    assert got_path == path
    assert fragment in message


# --- listener, compute, hooks, durations -------------------------------------------------------


def test_the_test_port_must_differ_from_the_port() -> None:
    assert only_problem(doc(listener={"port": 8080, "test_port": 8080})) == (
        "listener.test_port",
        "test_port must differ from port (8080)",
    )


@pytest.mark.parametrize("name", ["-shop", "shop/1", "", "a" * 64])
def test_the_service_name_is_a_plain_name(name: str) -> None:
    assert only_problem(doc(service=name))[0] == "service"


@pytest.mark.parametrize(("replicas", "ok"), [(0, False), (1, True), (64, True), (65, False)])
def test_replicas_are_between_1_and_64(replicas: int, ok: bool) -> None:
    data = doc(compute={"local": {"command": ["app", "{port}"], "replicas": replicas}})
    if ok:
        assert parse_document(ServiceSpec, data).compute.local is not None
    else:
        assert only_problem(data)[0] == "compute.local.replicas"


def test_placeholders_are_only_port_revision_replica_and_service() -> None:
    local = {
        "command": ["app", "--port", "{port}", "--name", "{servce}"],
        "env": {"V": "{revision}-{replica}", "JSON": '{"a": 1}', "BAD": "{version}"},
    }
    assert problems_of(doc(compute={"local": local})) == [
        (
            "compute.local.command[4]",
            "unknown placeholder {servce} (known: {port}, {replica}, {revision}, {service})",
        ),
        (
            "compute.local.env.BAD",
            "unknown placeholder {version} (known: {port}, {replica}, {revision}, {service})",
        ),
    ]


def test_the_process_must_be_told_its_port() -> None:
    assert only_problem(doc(compute={"local": {"command": ["app"]}})) == (
        "compute.local.command",
        "the process must learn its port: put {port} in the command or in an env value",
    )
    ok = doc(compute={"local": {"command": ["app"], "env": {"PORT": "{port}"}}})
    assert parse_document(ServiceSpec, ok).compute.local is not None


def test_env_names_must_be_environment_variable_names() -> None:
    local = {"command": ["app", "{port}"], "env": {"1X": "a"}}
    assert only_problem(doc(compute={"local": local})) == (
        "compute.local.env.1X",
        "'1X' is not an environment variable name",
    )


def test_exactly_one_compute_backend() -> None:
    both = {
        "local": {"command": ["app", "{port}"]},
        "external": {"revisions": {"v1": ["127.0.0.1:9001"]}},
    }
    message = "give exactly one compute backend: local, external or container"
    assert only_problem(doc(compute=both)) == ("compute", message)
    assert only_problem(doc(compute={})) == ("compute", message)


def test_external_endpoints_are_host_port_and_unique() -> None:
    revisions = {"v1": ["127.0.0.1:9001", "127.0.0.1:9001", "nowhere"], "v2": []}
    assert problems_of(doc(compute={"external": {"revisions": revisions}})) == [
        ("compute.external.revisions.v1[1]", "target '127.0.0.1:9001' is listed twice"),
        ("compute.external.revisions.v1[2]", "target 'nowhere' must be host:port"),
        (
            "compute.external.revisions.v2",
            "List should have at least 1 item after validation, not 0",
        ),
    ]


def test_a_hook_is_either_http_or_command() -> None:
    hooks = {"after_allow_traffic": [{"http": {"path": "/x"}, "command": ["y"]}]}
    assert only_problem(doc(deployment={"hooks": hooks})) == (
        "deployment.hooks.after_allow_traffic[0]",
        "a hook is either {http: {...}} or {command: [...]}",
    )


def test_hook_fields_are_checked_where_they_are() -> None:
    hooks = {
        "after_allow_traffic": [
            {"http": {"path": "smoke"}},
            {"http": {"path": "/ok", "expect_status": 99}},
            {"command": ["notify", "{revision}", "{replica}"], "timeout": "2h"},
            {"http": {"path": "/ok"}, "timeout": "5s"},
        ]
    }
    assert problems_of(doc(deployment={"hooks": hooks})) == [
        ("deployment.hooks.after_allow_traffic[0].http.path", "path must start with /"),
        (
            "deployment.hooks.after_allow_traffic[1].http.expect_status",
            "Input should be greater than or equal to 100",
        ),
        (
            "deployment.hooks.after_allow_traffic[2].command[2]",
            "unknown placeholder {replica} (known: {port}, {revision}, {service}, {test_port})",
        ),
        ("deployment.hooks.after_allow_traffic[2].timeout", "timeout must be at most 1h"),
        (
            "deployment.hooks.after_allow_traffic[3].timeout",
            "for an http hook, put timeout inside http: {...}",
        ),
    ]


def test_an_http_hook_before_traffic_needs_the_test_listener() -> None:
    hooks = {"before_allow_traffic": [{"command": ["check"]}, {"http": {"path": "/smoke"}}]}
    assert only_problem(doc(deployment={"hooks": hooks})) == (
        "deployment.hooks.before_allow_traffic[1].http",
        "an http hook before traffic runs through the test listener: set listener.test_port",
    )


def test_deployment_durations_are_bounded() -> None:
    assert problems_of(doc(deployment={"health_timeout": 0, "termination_wait": "3d"})) == [
        ("deployment.termination_wait", "termination_wait must be at most 2d"),
        ("deployment.health_timeout", "health_timeout must be above 0"),
    ]
    spec = parse_document(ServiceSpec, doc(deployment={"termination_wait": 0}))
    assert spec.deployment.termination_wait == 0.0  # stop blue as soon as it succeeds


def test_unknown_keys_are_refused_where_they_are() -> None:
    assert only_problem(doc(deployment={"strategy": "AllAtOnce"}))[0] == "deployment.strategy"


# --- placeholders --------------------------------------------------------------------------------


def test_expand_placeholders_fills_known_names_and_leaves_other_braces() -> None:
    values = {"port": 9001, "revision": "v2", "replica": 0}
    assert expand_placeholders("--port={port} {revision}/{replica}", values) == "--port=9001 v2/0"
    assert expand_placeholders('{"a": {port}} {other}', values) == '{"a": 9001} {other}'


def test_listener_tls_takes_the_router_tls_block() -> None:
    tls = {"certificates": [{"cert": "certs/shop.pem", "key": "certs/shop.key"}]}
    spec = parse_document(ServiceSpec, doc(listener={"port": 8443, "tls": tls}))
    assert spec.listener.tls is not None
    assert spec.listener.tls.min_version == "1.2"
    assert spec.listener.tls.ciphers == "default"


def test_listener_tls_refuses_tls_1_1_and_an_empty_certificate_list() -> None:
    assert problems_of(
        doc(listener={"port": 8443, "tls": {"certificates": [], "min_version": "1.1"}})
    ) == [
        ("listener.tls.certificates", "List should have at least 1 item after validation, not 0"),
        ("listener.tls.min_version", "TLS 1.1 is refused (deprecated by RFC 8996): use 1.2 or 1.3"),
    ]


def test_a_redirect_port_needs_tls_and_its_own_port() -> None:
    assert problems_of(doc(listener={"port": 8443, "redirect_port": 8443})) == [
        ("listener.redirect_port", "redirects to HTTPS: the listener needs tls"),
        ("listener.redirect_port", "redirect_port must differ from port and test_port"),
    ]
