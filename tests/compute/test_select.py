"""The compute selector: the spec's `compute:` key names the backend; engines never do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sluicegate.compute import ComputeSelector, ExternalCompute, LocalCompute, LocalSpec
from sluicegate.errors import SpecError
from sluicegate.spec import ServiceSpec


def service(compute: dict[str, object]) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "service": "shop",
            "listener": {"port": 8080},
            "health_check": {"path": "/ready"},
            "compute": compute,
        }
    )


LOCAL = {
    "local": {
        "command": [sys.executable, "app.py", "--port", "{port}"],
        "env": {"A": "1"},
        "replicas": 2,
        "stop_grace": "3s",
    }
}
EXTERNAL = {"external": {"revisions": {"v1": ["10.0.0.1:80", "10.0.0.2:80"]}}}


def test_a_local_spec_is_placed_on_local_compute_with_the_revisions_own_env(tmp_path: Path) -> None:
    local = LocalCompute(tmp_path)
    selector = ComputeSelector(local=local, external=ExternalCompute())
    placement = selector.compute_for(service(LOCAL), "v2", {"B": "2"})
    assert (placement.service, placement.revision) == ("shop", "v2")
    assert placement.spec == LocalSpec(  # type: ignore[attr-defined]
        command=[sys.executable, "app.py", "--port", "{port}"],
        env={"A": "1", "B": "2"},
        replicas=2,
        health_path="/ready",
        stop_grace=3.0,
    )
    assert placement.endpoints() == []  # nothing runs yet


def test_external_endpoints_are_known_from_the_spec_without_starting_anything() -> None:
    selector = ComputeSelector(external=ExternalCompute())
    placement = selector.compute_for(service(EXTERNAL), "v1")
    assert placement.endpoints() == ["10.0.0.1:80", "10.0.0.2:80"]
    with pytest.raises(SpecError) as err:
        selector.compute_for(service(EXTERNAL), "v2")
    assert str(err.value.problems[0]) == (
        "compute.external.revisions.v2: no endpoints are declared for this revision (declared: v1)"
    )


def test_a_backend_the_server_does_not_have_is_a_clear_error(tmp_path: Path) -> None:
    selector = ComputeSelector(local=LocalCompute(tmp_path))
    with pytest.raises(SpecError) as err:
        selector.compute_for(service(EXTERNAL), "v1")
    assert str(err.value.problems[0]) == (
        "compute.external: this server has no 'external' compute backend (it has: local)"
    )


@pytest.mark.parametrize(
    "endpoint", ["169.254.169.254:80", "[fe80::1]:8080", "metadata.google.internal:80"]
)
def test_an_external_endpoint_on_cloud_metadata_is_refused_unless_allowed(endpoint: str) -> None:
    spec = service({"external": {"revisions": {"v1": ["10.0.0.1:80", endpoint]}}})
    problems = ComputeSelector(external=ExternalCompute()).problems_of(spec)
    assert [p.path for p in problems] == ["compute.external.revisions.v1[1]"]
    assert "--allow-link-local-endpoints" in problems[0].message
    with pytest.raises(SpecError):
        ComputeSelector(external=ExternalCompute()).compute_for(spec, "v1")
    allowed = ComputeSelector(external=ExternalCompute(allow_link_local=True))
    assert allowed.problems_of(spec) == []
    assert allowed.compute_for(spec, "v1").endpoints() == ["10.0.0.1:80", endpoint]
