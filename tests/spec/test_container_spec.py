"""``compute.container``: what a user may write, and the message for each mistake."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.spec import parse_document
from sluicegate.spec.service import ServiceSpec, parse_host_url, parse_memory


def doc(**container: Any) -> dict[str, Any]:
    body = {"image": "localhost/shop:{revision}", "port": 8080, **container}
    return {"service": "shop", "listener": {"port": 8000}, "compute": {"container": body}}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_document(ServiceSpec, data)
    return [(p.path, p.message) for p in info.value.problems]


def test_a_full_container_spec_reads_with_sizes_durations_and_hosts() -> None:
    spec = parse_document(ServiceSpec, doc(
        env={"SHOP_VERSION": "{revision}", "TOKEN": {"secret": "SHOP_TOKEN"}},
        command=["/app/serve", "--port", "8080"], replicas=2, memory="256m", cpus=0.5,
        stop_grace="3s", pull="never",
        hosts=["unix:///run/podman/podman.sock", {"url": "tcp://10.0.0.5:2375",
                                                   "address": "10.0.0.5"}],
    ))  # fmt: skip
    container = spec.compute.container
    assert spec.compute.kind == "container" and container is not None
    assert (container.memory, container.cpus, container.stop_grace) == (256 << 20, 0.5, 3.0)
    assert [(h.url, h.address) for h in container.hosts] == [
        ("unix:///run/podman/podman.sock", "127.0.0.1"),
        ("tcp://10.0.0.5:2375", "10.0.0.5"),
    ]
    assert (container.pull, container.init, container.replicas) == ("never", True, 2)


def test_every_container_mistake_is_named_at_once() -> None:
    found = problems(doc(
        image="localhost/shop:{version}", port=0, memory="1k", pull="sometimes",
        hosts=["ssh://box", "unix:///a.sock", "unix:///a.sock"], env={"A": "{port}"},
        replicas=0,
    ))  # fmt: skip
    paths = [path for path, _ in found]
    assert paths == [
        "compute.container.image",
        "compute.container.port",
        "compute.container.env.A",
        "compute.container.replicas",
        "compute.container.memory",
        "compute.container.pull",
        "compute.container.hosts[0].url",
    ], found
    messages = dict(found)
    assert "unknown placeholder {version}" in messages["compute.container.image"]
    assert "below the 6m" in messages["compute.container.memory"]
    assert "unix:///path/to.sock or tcp://host:port" in messages["compute.container.hosts[0].url"]


def test_a_host_listed_twice_is_refused() -> None:
    assert problems(doc(hosts=["unix:///a.sock", "unix:///a.sock"])) == [
        ("compute.container.hosts[1]", "unix:///a.sock is listed twice")
    ]


def test_sizes_and_host_urls() -> None:
    assert parse_memory("1g") == 1 << 30 and parse_memory(64 << 20) == 64 << 20
    with pytest.raises(ValueError, match="not a size"):
        parse_memory("lots")
    assert parse_host_url("unix:///run/podman/podman.sock") == ("unix", "/run/podman/podman.sock")
    assert parse_host_url("tcp://[::1]:2375") == ("tcp", "[::1]:2375")
    with pytest.raises(ValueError, match="absolute path"):
        parse_host_url("unix://run/x.sock")
