"""The API keeps the contract its own ``/openapi.json`` states: schemathesis generates
requests for every operation of a real ``sluice server`` (valid ones and invalid ones), with
an admin token and with a reader token (and valid requests without a token: the 401s), and
checks every answer: never a 5xx, only the status codes the schema lists, the content type
it names, a body that matches its schema.

The server holds data first (a service with an alarm and a finished deployment, a flag
environment with a version, a webhook). Each operation is fuzzed twice: with generated path
parameters (mostly unknown names: the 404s), and with its path parameters naming that data,
so the answers about real objects are checked too. Requests are derandomized: the same
examples every run.

Left out, and why:

- ``GET /v1/flags/{env}/stream``: server-sent events; a stream never ends by itself, so an
  example would wait forever.
- Deleting the sample data (``DELETE`` of the service, the flag environment, the webhook):
  the other operations are meant to find the data there. Those operations are fuzzed with
  generated names only, and an example that happens to name the sample data is skipped.
- Webhook URLs are pointed at a closed port on 127.0.0.1 before the request is sent: the
  server delivers events to the webhooks it holds, and a generated URL may name any host.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests._support import APP_PATH, free_port
from tests._support.server import Server, running_server

SERVICE, ALARM, ENV = "shop", "errors", "staging"
# Per operation, path-parameter pass and generation mode; with both passes and modes about
# 20 an operation and token. To look harder by hand:
#   SLUICEGATE_FUZZ_EXAMPLES=100 SLUICEGATE_FUZZ_RANDOM=1 pytest tests/api/test_schema_contract.py
EXAMPLES = int(os.environ.get("SLUICEGATE_FUZZ_EXAMPLES", "8"))
DERANDOMIZE = os.environ.get("SLUICEGATE_FUZZ_RANDOM") != "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NOT_FUZZED = {("GET", "/v1/flags/{env}/stream")}  # never ends
DESTROYS = {  # operation -> the path parameter naming what it would delete
    ("DELETE", "/v1/services/{name}"): "name",
    ("DELETE", "/v1/flags/envs/{env}"): "env",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "webhook_id",
}
CLOSED_PORT_URL = "http://127.0.0.1:9/sluicegate-schema-test"


@dataclass(frozen=True)
class Live:
    server: Server
    tokens: dict[str, str]
    schema: Any
    names: dict[str, Any]  # path parameter -> the sample object it names


def call(server: Server, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(
        method,
        server.url + path,
        json=body,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def _sample_data(server: Server) -> dict[str, Any]:
    """Make the sample objects; returns path parameter values naming them."""
    spec = {
        "service": SERVICE,
        "listener": {"port": free_port()},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "alarms": [
            {
                "name": ALARM,
                "metric": {
                    "source": "router",
                    "name": "5xx",
                    "dimensions": {"listener": SERVICE},
                },
                "statistic": "Sum",
                "period": "10s",
                "evaluation_periods": 3,
                "threshold": 5,
                "comparison": "GreaterThanThreshold",
            }
        ],
        "compute": {
            "local": {
                "command": [sys.executable, str(APP_PATH), "--port", "{port}"],
                "replicas": 1,
                "stop_grace": "2s",
            }
        },
    }
    call(server, "PUT", f"/v1/services/{SERVICE}", spec)
    dep = call(server, "POST", f"/v1/services/{SERVICE}/deployments", {"revision": "v1"})
    server.wait_phase(dep["id"], {"succeeded"})
    call(server, "POST", "/v1/flags/envs", {"name": ENV, "description": "schema test"})
    flags = {"flags": {"checkout": {"type": "boolean", "default_variant": "off"}}}
    call(server, "PUT", f"/v1/flags/{ENV}", {"document": flags})
    hook = call(
        server, "POST", "/v1/webhooks", {"url": CLOSED_PORT_URL, "events": ["webhook.test"]}
    )
    return {
        "service": SERVICE,
        "env": ENV,
        "dep_id": dep["id"],
        "webhook_id": hook["id"],
        "number": 1,
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    state = tmp_path_factory.mktemp("schema-contract") / "state"
    with running_server(state, ["--no-default-guards", "--allow-private-webhooks"]) as server:
        reader = call(server, "POST", "/v1/tokens", {"role": "reader", "name": "fuzz"})["token"]
        names = _sample_data(server)
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        yield Live(server, {"admin": server.token, "reader": reader}, schema, names)


def _on_sample(live: Live, method: str, path: str) -> dict[str, Any] | None:
    """Path parameters naming the sample data; None when the operation has none to name or
    would delete it."""
    wanted = set(re.findall(r"\{(\w+)\}", path)) - {"command"}
    if not wanted or (method, path) in DESTROYS:
        return None
    names = {**live.names, "name": ALARM if path.startswith("/v1/alarms/") else SERVICE}
    return {k: names[k] for k in wanted}


def _prepare(live: Live, case: Any) -> None:
    """Spare the sample data; point webhooks at a closed local port."""
    param = DESTROYS.get((case.method.upper(), case.operation.path))
    if param is not None:
        value = (case.path_parameters or {}).get(param)
        assume(value not in (live.names.get(param), SERVICE))
    body = case.body
    if case.operation.path == "/v1/webhooks" and isinstance(body, dict) and "url" in body:
        body["url"] = CLOSED_PORT_URL


def _fuzz(
    live: Live,
    operation: Any,
    mode: GenerationMode,
    token: str | None,
    path: dict[str, Any] | None,
) -> int:
    """Requests sent; 0 when the operation has no invalid input to make (negative mode for
    an operation whose only parameters are strings, say)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    strategy = operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=path)
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=DERANDOMIZE,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal sent
        _prepare(live, case)
        sent += 1
        case.call_and_validate(base_url=live.server.url, session=session, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
    return sent


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["admin", "reader", "anonymous"])
def test_every_operation_answers_as_the_schema_says(live: Live, role: str) -> None:
    started = time.monotonic()
    token = live.tokens.get(role)
    modes = (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if token else [GenerationMode.POSITIVE]
    )
    failures: list[str] = []
    fuzzed = sent = 0
    for result in live.schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if (method, path) in NOT_FUZZED:
            continue
        fuzzed += 1
        on_sample = _on_sample(live, method, path) if token else None
        for where in [None, on_sample] if on_sample else [None]:
            for mode in modes:
                try:
                    sent += _fuzz(live, operation, mode, token, where)
                except (Exception, BaseExceptionGroup) as exc:  # all failures, not the first
                    how = f"{mode.value}, {role}" + (f", {where}" if where else "")
                    failures.append(f"{operation.label} ({how}):\n{exc}")
    assert fuzzed >= 45, f"only {fuzzed} operations in the schema"
    assert not failures, "\n\n".join(failures)
    took = time.monotonic() - started
    print(f"{role}: {sent} requests to {fuzzed} operations in {took:.0f}s")
