"""Exposure counts end to end: a real ``sluice agent`` reports what it evaluated over OFREP
to a real ``sluice server``, which then shows exactly those counts per flag and variant —
also across a server outage, and for the last evaluations before a clean shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests._support import REPO_ROOT
from tests._support.flag_sync import AgentProcess, start_agent
from tests._support.server import Server, running_server
from tests.test_flags_e2e import V1

pytestmark = pytest.mark.slow

Totals = dict[tuple[str, str], int]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "state") as s:
        s.cli("flags", "envs", "create", "prod")
        (tmp_path / "v1.yaml").write_text(V1)
        s.cli("flags", "apply", "-f", str(tmp_path / "v1.yaml"), "--env", "prod")
        yield s


def totals(server: Server) -> Totals:
    data = server.api(f"/flags/prod/exposures?since={int(time.time()) - 3600}")
    return {(v["flag"], v["variant"]): v["count"] for v in data["variants"]}


def settle(read: Callable[[], Totals], expected: Totals, what: str, timeout: float = 20.0) -> None:
    """Wait until ``read()`` equals ``expected`` (reports arrive on their own timer)."""
    deadline = time.monotonic() + timeout
    got: Totals = {}
    while time.monotonic() < deadline:
        try:
            got = read()
        except (AssertionError, httpx.HTTPError):
            got = {}
        if got == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: the server shows {got}, expected {expected}")


def evaluate(agent: AgentProcess, calls: list[tuple[str, str]]) -> None:
    for key, user in calls:
        r = agent.ofrep(key, {"targetingKey": user})
        assert r.status_code in (200, 404), r.text


def start(server: Server, tmp_path: Path, *extra: str) -> AgentProcess:
    key = server.cli("keys", "create", "--env", "prod").strip()
    agent = start_agent(server.url, key, tmp_path / "cache", extra=list(extra))
    agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
    return agent


CALLS = (
    [("checkout", f"user-{i}") for i in range(25)]
    + [("search", "alice")] * 3
    + [("search", "bob")] * 2
    + [("search", "carol")] * 7
    + [("no-such-flag", "alice")] * 4
)
EXPECTED = {
    ("checkout", "classic"): 25,
    ("search", "on"): 5,
    ("search", "off"): 7,
    ("(unknown)", "error:FLAG_NOT_FOUND"): 4,
}


def test_the_server_shows_exactly_the_evaluations_the_agent_served(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = start(server, tmp_path, "--report-interval", "0.2")
    try:
        evaluate(agent, CALLS)
        settle(lambda: totals(server), EXPECTED, "after one batch")
        time.sleep(1.0)  # five more report intervals: nothing may be sent twice
        assert totals(server) == EXPECTED
        evaluate(agent, [("search", "carol")] * 3)
        settle(lambda: totals(server), {**EXPECTED, ("search", "off"): 10}, "after more")
    finally:
        agent.stop()
    out = json.loads(server.cli("flags", "exposures", "prod", "--flag", "search", "--json"))
    assert {v["variant"]: v["count"] for v in out["variants"]} == {"on": 5, "off": 10}
    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per row
    rows = [
        line.split("│")[1:-1]
        for line in server.cli("flags", "exposures", "prod", "--since", "15m").splitlines()
        if line.startswith("│")
    ]
    assert [[cell.strip() for cell in row[:4]] for row in rows] == [
        ["(unknown)", "error:FLAG_NOT_FOUND", "4", "100.0 %"],
        ["checkout", "classic", "25", "100.0 %"],
        ["search", "off", "10", "66.7 %"],
        ["search", "on", "5", "33.3 %"],
    ]


def test_counts_made_while_the_server_was_down_arrive_once_it_is_back(
    server: Server, tmp_path: Path
) -> None:
    agent = start(server, tmp_path, "--report-interval", "0.2")
    try:
        evaluate(agent, [("checkout", "u1")] * 6)
        settle(lambda: totals(server), {("checkout", "classic"): 6}, "before the outage")
        server.kill()
        evaluate(agent, [("checkout", "u2")] * 9 + [("search", "alice")] * 2)
        agent.wait_for(
            lambda: "exposure report not delivered" in agent.logs(), what="a failed report"
        )
        server.start()  # same port, same state
        settle(
            lambda: totals(server),
            {("checkout", "classic"): 15, ("search", "on"): 2},
            "after the outage",
        )
    finally:
        agent.stop()


def test_a_clean_shutdown_reports_what_the_timer_has_not_sent_yet(
    server: Server, tmp_path: Path
) -> None:
    agent = start(server, tmp_path, "--report-interval", "1h")
    evaluate(agent, [("search", "bob")] * 4 + [("checkout", "u3")] * 3)
    assert agent.stop() == 0
    assert totals(server) == {("search", "on"): 4, ("checkout", "classic"): 3}


def test_report_interval_zero_reports_nothing(server: Server, tmp_path: Path) -> None:
    agent = start(server, tmp_path, "--report-interval", "0")
    evaluate(agent, [("search", "bob")] * 2)
    assert agent.stop() == 0
    assert totals(server) == {}


def test_a_bad_report_interval_is_refused_by_name(server: Server) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluicegate",
            "agent",
            "--server",
            server.url,
            "--env",
            "prod",
            "--report-interval",
            "soon",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2 and "--report-interval" in out.stderr
