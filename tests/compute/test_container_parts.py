"""The container backend's pure parts: create bodies, host choice, exit words."""

from __future__ import annotations

import pytest

from sluicegate.compute import ContainerCompute
from sluicegate.compute._container_parts import (
    ContainerSpec,
    HostRef,
    create_body,
    describe_exit,
    find_default_host,
)
from sluicegate.errors import SpecError
from sluicegate.spec import parse_document
from sluicegate.spec.service import ServiceSpec


def test_a_replica_container_is_labelled_limited_published_on_its_host_and_has_an_init() -> None:
    spec = ContainerSpec(
        image="localhost/shop:{revision}", port=8080,
        hosts=(HostRef("unix:///a.sock"), HostRef("tcp://10.0.0.5:2375", "10.0.0.5")),
        env={"VERSION": "{revision}-{replica}", "TOKEN": "s3cret"},
        command=["/app", "--name", "{service}-{replica}"], memory=64 << 20, cpus=0.5,
        stop_grace=2.5,
    )  # fmt: skip
    body = create_body(spec, "shop", "v2", 1, 41000, "d-1")
    assert body["Image"] == "localhost/shop:v2"
    assert body["Cmd"] == ["/app", "--name", "shop-1"]
    assert body["Env"] == ["VERSION=v2-1", "TOKEN=s3cret"]
    assert body["Labels"] == {
        "sluicegate.service": "shop",
        "sluicegate.revision": "v2",
        "sluicegate.replica": "1",
        "sluicegate.deployment": "d-1",
    }
    host = body["HostConfig"]
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "10.0.0.5", "HostPort": "41000"}]}
    assert (host["Init"], host["Memory"], host["NanoCpus"]) == (True, 64 << 20, 500_000_000)
    assert host["RestartPolicy"] == {"Name": "no"}  # Sluicegate restarts and counts
    assert body["StopTimeout"] == 3  # whole seconds, rounded up
    assert "Cmd" not in create_body(
        ContainerSpec("i", 80, (HostRef("unix:///a"),)), "s", "r", 0, 1, None
    )


def test_the_default_host_is_the_flag_then_the_environment_then_a_local_socket() -> None:
    found, _ = find_default_host("tcp://h:2375", {"DOCKER_HOST": "unix:///d.sock"})
    assert found == HostRef("tcp://h:2375", chosen="sluice server --container-host")
    found, _ = find_default_host(None, {"DOCKER_HOST": "unix:///d.sock"})
    assert found == HostRef("unix:///d.sock", chosen="from DOCKER_HOST")
    found, _ = find_default_host(
        None, {"CONTAINER_HOST": "unix:///p.sock", "DOCKER_HOST": "unix:///d.sock"}
    )
    assert found is not None and found.chosen == "from CONTAINER_HOST"
    found, _ = find_default_host(None, {}, exists=lambda p: p == "/var/run/docker.sock")
    assert found == HostRef("unix:///var/run/docker.sock", chosen="found on this machine")
    found, tried = find_default_host(None, {"XDG_RUNTIME_DIR": "/run/user/7"},
                                     exists=lambda p: False)  # fmt: skip
    assert found is None
    assert tried == (
        "/run/podman/podman.sock, /var/run/docker.sock, /run/user/7/podman/podman.sock"
    )


def test_exits_are_described_in_words() -> None:
    assert describe_exit({"ExitCode": 3}) == "exited with status 3"
    assert describe_exit({"ExitCode": 137}) == "exited with status 137 (SIGKILL)"
    assert describe_exit({"OOMKilled": True, "ExitCode": 137}).startswith(
        "was killed: out of memory"
    )


def test_secret_env_reaches_the_container_spec_and_is_named_for_redaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = {
        "service": "shop",
        "listener": {"port": 8000},
        "compute": {"container": {
            "image": "localhost/shop:{revision}", "port": 8080,
            "env": {"TOKEN": {"secret": "SHOP_TOKEN"}, "MODE": "prod"},
            "hosts": ["unix:///a.sock"],
        }},
    }  # fmt: skip
    spec = parse_document(ServiceSpec, data)
    compute = ContainerCompute()
    monkeypatch.delenv("SHOP_TOKEN", raising=False)
    assert [p.path for p in compute.problems_of(spec)] == ["compute.container.env.TOKEN"]
    with pytest.raises(SpecError, match="has no SHOP_TOKEN"):
        compute.place(spec, "v1", {})
    monkeypatch.setenv("SHOP_TOKEN", "hunter22")
    placed = compute.place(spec, "v1", {"MODE": "canary"})
    assert dict(placed.spec.env) == {"MODE": "canary", "TOKEN": "hunter22"}
    assert compute.secrets_of(spec) == ["hunter22"]


def test_without_hosts_and_without_any_engine_apply_is_refused_naming_what_was_tried() -> None:
    data = {
        "service": "shop",
        "listener": {"port": 8000},
        "compute": {"container": {"image": "localhost/shop:{revision}", "port": 8080}},
    }
    spec = parse_document(ServiceSpec, data)
    compute = ContainerCompute(
        environ={"XDG_RUNTIME_DIR": "/nonexistent/run"}, socket_exists=lambda path: False
    )
    (problem,) = compute.problems_of(spec)
    assert problem.path == "compute.container.hosts"
    assert "no --container-host, no CONTAINER_HOST or DOCKER_HOST" in problem.message
    assert "/nonexistent/run/podman/podman.sock" in problem.message
