"""Alarms end to end through `sluice server --no-default-guards`: a user's alarm on green's
5xx rate rolls a bad release back and lets a good one through; an Alertmanager alert rolls
back the same way."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._support import APP_PATH, free_port
from tests._support.rawhttp import get_many
from tests._support.server import Server, running_server

HIGH_5XX: dict[str, Any] = {
    "name": "high-5xx",
    "description": "green answers 5xx to more than 5 % of requests",
    "metrics": {
        "e": {
            "source": "router",
            "name": "5xx",
            "dimensions": {"listener": "{service}", "target_group": "{green}"},
        },
        "r": {
            "source": "router",
            "name": "requests",
            "dimensions": {"listener": "{service}", "target_group": "{green}"},
        },
    },
    "expression": "e / r",
    "statistic": "Sum",
    "period": "1s",
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
    "threshold": 0.05,
    "comparison": "GreaterThanThreshold",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("alarms-e2e") / "state"
    with running_server(state, ["--no-default-guards"]) as s:
        yield s


def spec(name: str, port: int, pause: str, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "service": name,
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [
                    sys.executable,
                    str(APP_PATH),
                    "--port",
                    "{port}",
                    "--version",
                    "{revision}",
                ],
                "replicas": 1,
                "stop_grace": "2s",
            }
        },
        "deployment": {
            "config": {"steps": [{"weight": 50, "pause": pause}, {"weight": 100}]},
            "termination_wait": "1s",
        },
        "alarms": alarms,
    }


class Load:
    """Requests to the production port in a loop, counted by version or status."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.seen: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for r in get_many(self.port, 20):
                    self.seen[r.version if r.status == 200 else str(r.status)] += 1
            except OSError as exc:
                self.seen[f"error {type(exc).__name__}"] += 1

    def end(self) -> None:
        self.stop.set()
        self.thread.join(10)


def apply(server: Server, tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / f"{doc['service']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    server.cli("apply", "-f", str(path))


def deploy(server: Server, service: str, revision: str, *settings: str) -> str:
    out = server.cli(
        "deploy", service, "--revision", revision, *[a for s in settings for a in ("--set", s)]
    )
    found = re.search(r"deployment (\S+):", out)
    assert found, out
    return found.group(1)


def test_a_user_alarm_rolls_back_a_bad_release_and_lets_a_good_one_through(
    server: Server, tmp_path: Path
) -> None:
    port = free_port()
    apply(server, tmp_path, spec("shop", port, "30s", [HIGH_5XX]))
    server.wait_phase(deploy(server, "shop", "v1"), {"succeeded"})
    load = Load(port)
    try:
        bad = deploy(server, "shop", "v2", "env.SHOP_FAIL_PERCENT=50")
        final = server.wait_phase(bad, {"rolled_back"}, timeout=60)
        story = {e["kind"]: e for e in final["events"]}
        assert story["deployment.alarm"]["message"].startswith(
            "guard fired: alarm shop/high-5xx: Threshold Crossed"
        )
        evidence = story["deployment.alarm_evidence"]["data"]
        assert evidence["alarm"] == "shop/high-5xx"
        breaching = [p for p in evidence["datapoints"] if p["breaching"]]
        assert len(breaching) >= 2 and all(p["value"] > 0.05 for p in breaching)
        history = json.loads(server.cli("alarms", "history", "shop/high-5xx", "--json"))
        to_alarm = [h for h in history if h["new_state"] == "ALARM"]
        assert to_alarm and to_alarm[0]["old_state"] in ("OK", "INSUFFICIENT_DATA")
        assert to_alarm[0]["reason"].startswith("Threshold Crossed")
        assert "ALARM" in server.cli("alarms", "history", "shop/high-5xx")

        apply(server, tmp_path, spec("shop", port, "5s", [HIGH_5XX]))  # the alarm stays
        seen_before = len(history)
        good = deploy(server, "shop", "v3")
        server.wait_phase(good, {"succeeded"}, timeout=60)
    finally:
        load.end()
    later = json.loads(server.cli("alarms", "history", "shop/high-5xx", "--json"))
    assert all(h["new_state"] != "ALARM" for h in later[seen_before:])
    alarm = json.loads(server.cli("alarms", "get", "shop/high-5xx", "--json"))
    assert alarm["state"] != "ALARM"
    assert load.seen["v3"] > 0 and load.seen["500"] > 0  # v2 did fail some requests


def test_an_alertmanager_alert_rolls_back_the_deployment_of_its_service(
    server: Server, tmp_path: Path
) -> None:
    port = free_port()
    apply(server, tmp_path, spec("cart", port, "60s", []))
    server.wait_phase(deploy(server, "cart", "v1"), {"succeeded"})
    dep = deploy(server, "cart", "v2")
    server.wait_phase(dep, {"shifting"})
    alert = {
        "status": "firing",
        "fingerprint": "f00d",
        "labels": {"alertname": "CartErrors", "sluicegate_service": "cart"},
        "annotations": {"summary": "cart 5xx above 1%"},
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    r = httpx.post(
        server.url + "/v1/alertmanager",
        timeout=10,
        headers={"Authorization": f"Bearer {server.token}"},
        json={"version": "4", "status": "firing", "alerts": [alert]},
    )
    assert r.status_code == 200, r.text
    final = server.wait_phase(dep, {"rolled_back"}, timeout=30)
    [event] = [e for e in final["events"] if e["kind"] == "deployment.alarm"]
    assert event["message"].startswith(
        "guard fired: alarm cart/alertmanager:CartErrors: Alertmanager: CartErrors firing"
    )
    assert "cart 5xx above 1%" in event["message"]
