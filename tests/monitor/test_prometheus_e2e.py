"""A PromQL alarm end to end: Debian's Prometheus scrapes the router that ``sluice server``
runs, the server's alarm loop evaluates the service's alarm through ``--prometheus-url``, and
a bad release is rolled back by it (the built-in canary guard is off)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests._support import free_port
from tests._support.prometheus import PrometheusServer
from tests._support.server import Server, stop_everything
from tests.test_alarms_e2e import Load, apply, deploy, spec

_GREEN = 'listener="{service}",target_group="{green}"'
PROMQL_5XX: dict[str, Any] = {
    "name": "green-5xx-promql",
    "metric": {
        "source": "prometheus",
        "query": f'sum(rate(sluicegate_router_requests_total{{{_GREEN},code="5xx"}}[3s]))'
        f" / sum(rate(sluicegate_router_requests_total{{{_GREEN}}}[3s]))",
    },
    "period": "1s",
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
    "threshold": 0.05,
    "comparison": "GreaterThanThreshold",
    "treat_missing_data": "notBreaching",
}


def test_a_promql_alarm_rolls_back_a_bad_release_through_the_server(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = Server(state, free_port(), ["--no-default-guards", "--prometheus-url", prometheus.url])
    job = None
    try:
        server.start()
        router = json.loads((state / "router" / "router.json").read_text())
        token = (state / "router" / "admin.token").read_text().strip()
        job = prometheus.scrape_router(
            SimpleNamespace(  # type: ignore[arg-type]
                token=token, admin_port=int(router["admin_port"])
            )
        )
        port = free_port()
        apply(server, tmp_path, spec("shop", port, "60s", [PROMQL_5XX]))
        server.wait_phase(deploy(server, "shop", "v1"), {"succeeded"})
        load = Load(port)
        try:
            bad = deploy(server, "shop", "v2", "env.SHOP_FAIL_PERCENT=50")
            final = server.wait_phase(bad, {"rolled_back"}, timeout=90)
        finally:
            load.end()
        [event] = [e for e in final["events"] if e["kind"] == "deployment.alarm"]
        assert event["message"].startswith(
            "guard fired: alarm shop/green-5xx-promql: Threshold Crossed"
        ), event["message"]
        history = json.loads(server.cli("alarms", "history", "shop/green-5xx-promql", "--json"))
        assert any(h["new_state"] == "ALARM" for h in history)
        assert load.seen["500"] > 0
    finally:
        if job is not None:
            prometheus.forget(job)
        server.stop()
        stop_everything(state)
