"""The CLI for scripts and for people, against a real server: ``--json`` prints the API's
answer unchanged; ``services``, ``deployments list`` and ``flags envs delete``; ``events
--follow`` and ``logs --follow`` print every new event or line once, and Ctrl-C ends them
with 130 and no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import httpx
import pytest
import yaml

from tests._support import REPO_ROOT, free_port
from tests._support.receiver import Receiver
from tests._support.server import Server, running_server

HOOK = [sys.executable, "-c", "import sys; sys.exit('{revision}'.startswith('bad-'))"]

# A replica that serves /healthz, prints what GET /say/<text> asks, and after GET /tick
# prints "tick 0" ... "tick 59" over about a second.
TALKER = """
import http.server, sys, threading, time
def ticks():
    for i in range(60):
        print('tick ' + str(i), flush=True)
        time.sleep(0.02)
class Talk(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/say/'):
            print(self.path[5:], flush=True)
        if self.path == '/tick':
            threading.Thread(target=ticks).start()
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Talk).serve_forever()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = ["--no-default-guards", "--allow-private-webhooks"]
    with running_server(tmp_path_factory.mktemp("read-cmds") / "state", args) as s:
        yield s


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def env_for(server: Server) -> dict[str, str]:
    return {**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token, "COLUMNS": "200"}


def sluice(
    server: Server, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        env=env_for(server),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO_ROOT,
        check=False,
    )


def ok(server: Server, *args: str) -> str:
    out = sluice(server, *args)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def api(server: Server, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(
        method,
        server.url + "/v1" + path,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
        **kw,
    )
    assert r.status_code < 300, r.text
    return r.json()


def declare(server: Server, tmp_path: Path, name: str, *, talker: bool = False) -> int:
    """Service ``name`` (the sample app, or ``TALKER``); returns its listener port."""
    port = free_port()
    command = (
        [sys.executable, "-c", TALKER, "{port}"]
        if talker
        else [sys.executable, str(REPO_ROOT / "examples" / "app.py"), "--port", "{port}"]
    )
    spec = {
        "service": name,
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {"local": {"command": command, "replicas": 1, "stop_grace": "1s"}},
        "deployment": {
            "config": "AllAtOnce",
            "termination_wait": "0s",
            "hooks": {"before_allow_traffic": [{"command": HOOK, "timeout": "30s"}]},
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    ok(server, "apply", "-f", str(path))
    return port


def deployed(server: Server, name: str, revision: str) -> str:
    dep: str = json.loads(ok(server, "deploy", name, "-r", revision, "--json"))["id"]
    server.wait_phase(dep, {"succeeded"})
    return dep


@pytest.fixture(scope="module")
def shop(server: Server, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Service ``shop`` serving v1, flag env ``prod`` with a version, a webhook with one
    delivery done."""
    declare(server, tmp_path_factory.mktemp("shop"), "shop")
    deployed(server, "shop", "v1")
    ok(server, "flags", "envs", "create", "prod")
    flags = {"flags": {"beta": {"type": "boolean", "default_variant": "off"}}}
    api(server, "PUT", "/flags/prod", json={"document": flags})
    hook = api(server, "POST", "/webhooks",
               json={"url": receiver.url("/t"), "events": ["webhook.test"]})["id"]  # fmt: skip
    api(server, "POST", f"/webhooks/{hook}/test")
    receiver.wait_for(1, "/t")
    deadline = time.monotonic() + 30
    while api(server, "GET", f"/webhooks/{hook}/deliveries")[0]["status"] != "delivered":
        assert time.monotonic() < deadline, "the test delivery was not recorded as delivered"
        time.sleep(0.1)
    return "shop"


def test_json_prints_exactly_what_the_api_answers(server: Server, shop: str) -> None:
    dep = api(server, "GET", "/deployments", params={"service": shop})[0]["id"]
    hook = api(server, "GET", "/webhooks")[0]["id"]
    cases: list[tuple[list[str], str, dict[str, Any]]] = [
        (["status", shop], f"/services/{shop}", {}),
        (["services", "get", shop], f"/services/{shop}", {}),
        (["services", "list"], "/services", {}),
        (["deployments", "list", "--service", shop], "/deployments", {"service": shop}),
        (
            ["deployments", "list", "--ended", "--limit", "1"],
            "/deployments",
            {"active": "false", "limit": 1},
        ),
        (["deployments", "get", dep], f"/deployments/{dep}", {}),
        (["events", "--service", shop], "/events", {"service": shop}),
        (
            ["events", "--kind", "deployment.*", "--limit", "2"],
            "/events",
            {"kind": "deployment.*", "limit": 2},
        ),
        (["logs", shop, "-r", "v1"], f"/services/{shop}/logs", {"revision": "v1"}),
        (["flags", "history", "--env", "prod"], "/flags/prod/versions", {}),
        (["flags", "envs"], "/flags/envs", {}),
        (["flags", "envs", "list"], "/flags/envs", {}),
        (["webhooks", "list"], "/webhooks", {}),
        (["webhooks", "deliveries", hook], f"/webhooks/{hook}/deliveries", {}),
    ]
    for args, path, params in cases:
        printed = json.loads(ok(server, *args, "--json"))
        assert printed == api(server, "GET", path, params=params), args
        assert printed, args  # something to compare: not an empty answer by mistake


def test_deploy_json_prints_the_created_deployment_or_with_watch_the_final_one(
    server: Server, tmp_path: Path
) -> None:
    declare(server, tmp_path, "jsoned")
    created = json.loads(ok(server, "deploy", "jsoned", "-r", "v1", "--json"))
    assert created["revision"] == "v1" and created["from_revision"] is None
    assert created["plan"][0].startswith("First deployment of jsoned")
    server.wait_phase(created["id"], {"succeeded"})
    out = sluice(server, "deploy", "jsoned", "-r", "v2", "--watch", "--json")
    assert out.returncode == 0, out.stderr
    final = json.loads(out.stdout)  # one document, nothing before it
    assert final == api(server, "GET", f"/deployments/{final['id']}")
    assert (final["phase"], final["from_revision"], final["green_weight"]) == (
        "succeeded",
        "v1",
        100,
    )
    bad = sluice(server, "deploy", "jsoned", "-r", "bad-v3", "--watch", "--json")
    assert bad.returncode == 3, bad.stderr  # the exit code still says how it ended
    rolled_back = json.loads(bad.stdout)
    assert rolled_back["phase"] == "rolled_back"
    assert rolled_back["reason"].startswith("before_allow_traffic hook 1 of 1 failed")


def test_deployments_list_filters_by_service_and_by_active_or_ended(
    server: Server, tmp_path: Path
) -> None:
    declare(server, tmp_path, "listed")
    first = deployed(server, "listed", "v1")
    second = deployed(server, "listed", "v2")

    def ids(*args: str) -> list[str]:
        return [d["id"] for d in json.loads(ok(server, "deployments", "list", *args, "--json"))]

    assert ids("--service", "listed") == [second, first]
    assert ids("--service", "listed", "--limit", "1") == [second]
    assert ids("--service", "listed", "--ended") == [second, first]
    assert ids("--service", "listed", "--active") == []
    table = ok(server, "deployments", "list", "--service", "listed")
    assert second in table and "v1 → v2" in table and "succeeded" in table


def test_services_delete_asks_refuses_while_deploying_and_says_what_it_stopped(
    server: Server, tmp_path: Path
) -> None:
    declare(server, tmp_path, "doomed")
    deployed(server, "doomed", "v1")
    spec_yaml = ok(server, "services", "get", "doomed", "--spec")
    assert yaml.safe_load(spec_yaml)["service"] == "doomed"
    shown = ok(server, "services", "get", "doomed")
    assert "revision" in shown and "v1" in shown and "AllAtOnce" in shown
    declined = sluice(server, "services", "delete", "doomed", stdin="n\n")
    assert declined.returncode == 130, declined.stderr
    assert "Delete service doomed (serving v1)" in declined.stderr
    assert api(server, "GET", "/services/doomed")["revision"] == "v1"  # still there

    gated = {"steps": [{"weight": 10}, {"pause": "until_promoted"}]}
    dep = api(server, "POST", "/services/doomed/deployments",
              json={"revision": "v2", "config": gated})["id"]  # fmt: skip
    server.wait_phase(dep, {"paused_until_promoted"})
    busy = sluice(server, "services", "delete", "doomed", "--yes")
    assert busy.returncode == 2
    assert f"has an active deployment {dep}" in busy.stderr, busy.stderr
    ok(server, "stop", dep)
    server.wait_phase(dep, {"stopped"})
    said = sluice(server, "services", "delete", "doomed", stdin="y\n")
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "service doomed deleted; stopped v1"
    assert "doomed" not in [
        s["service"] for s in json.loads(ok(server, "services", "list", "--json"))
    ]
    unknown = sluice(server, "services", "delete", "doomed")
    assert unknown.returncode == 2 and "doomed" in unknown.stderr


def test_flags_envs_delete_asks_and_says_why_an_env_in_use_stays(server: Server) -> None:
    ok(server, "flags", "envs", "create", "scratch")
    ok(server, "flags", "envs", "create", "held")
    ok(server, "keys", "create", "--env", "held", "--name", "held-agent")
    declined = sluice(server, "flags", "envs", "delete", "scratch", stdin="n\n")
    assert declined.returncode == 130
    assert "Delete flag environment scratch (no flag set yet)" in declined.stderr
    assert ok(server, "flags", "envs", "delete", "scratch", "--yes").strip() == (
        "flag environment scratch deleted"
    )
    refused = sluice(server, "flags", "envs", "delete", "held", "--yes")
    assert refused.returncode == 2
    assert "is read by 1 agent token (held-agent); revoke them first" in refused.stderr
    names = [e["name"] for e in json.loads(ok(server, "flags", "envs", "--json"))]
    assert "held" in names and "scratch" not in names
    unknown = sluice(server, "flags", "envs", "delete", "nowhere", "--yes")
    assert unknown.returncode == 2 and "nowhere" in unknown.stderr


def test_every_flag_command_takes_the_env_as_option_or_bare_argument(
    server: Server, shop: str
) -> None:
    spellings = (["--env", "prod"], ["-e", "prod"], ["prod"])
    answers = [json.loads(ok(server, "flags", "exposures", *env, "--json")) for env in spellings]
    for answer in answers:
        for clock in ("now", "since"):  # the server's clock, and "1h ago" by the CLI's
            answer.pop(clock)
        assert answer == answers[0] and answer["env"] == "prod"
    no_rollout = [sluice(server, "flags", "rollout", "status", *env) for env in spellings]
    for out in no_rollout:
        assert out.returncode == 2
        assert "flag environment 'prod' has had no rollout yet" in out.stderr
    for command in (["flags", "exposures"], ["flags", "rollout", "status"]):
        none = sluice(server, *command)
        assert none.returncode == 2 and "which environment? give --env ENV" in none.stderr
        both = sluice(server, *command, "prod", "--env", "staging")
        assert both.returncode == 2
        assert "two environments given: ENV 'prod' and --env 'staging'" in both.stderr
    assert ok(server, "flags", "envs", "create", "by-option")
    assert ok(server, "flags", "envs", "delete", "--env", "by-option", "--yes").strip() == (
        "flag environment by-option deleted"
    )


class Following:
    """A ``sluice ... --follow`` process whose stdout lines arrive on a queue."""

    def __init__(self, server: Server, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sluicegate", *args],
            env=env_for(server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        self.lines: Queue[str] = Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def next(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"no output within {timeout}s; stderr: {self.stop()[1]}") from None

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit code and stderr."""
        self.proc.send_signal(signal.SIGINT)
        return self.stop()

    def stop(self) -> tuple[int, str]:
        try:
            _, err = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, err


def test_events_follow_prints_every_new_event_once_however_many_come_at_once(
    server: Server, tmp_path: Path
) -> None:
    declare(server, tmp_path, "busy")
    following = Following(server, "events", "--follow", "--json", "--service", "busy",
                          "--limit", "2")  # fmt: skip
    try:
        seen = [json.loads(following.next())]  # the newest (only) event so far: it runs
        assert seen[0]["kind"] == "service.applied"
        for _ in range(7):  # more than a page (2) at once
            declare(server, tmp_path, "busy")
        expected = api(server, "GET", "/events", params={"service": "busy"})
        while len(seen) < len(expected):
            seen.append(json.loads(following.next()))
        assert seen == expected  # each once, in order, as the API answers them
    finally:
        code, err = following.interrupt()
    assert code == 130 and "Traceback" not in err, err


def test_logs_follow_prints_each_line_once_as_the_replica_writes_it(
    server: Server, tmp_path: Path
) -> None:
    port = declare(server, tmp_path, "talker", talker=True)
    deployed(server, "talker", "v1")
    httpx.get(f"http://127.0.0.1:{port}/say/before")
    following = Following(server, "logs", "talker", "-r", "v1", "--follow", "--json")
    try:
        first = json.loads(following.next())  # the tail: it runs
        assert first["replicas"][0]["lines"][-1] == "before"
        httpx.get(f"http://127.0.0.1:{port}/tick")  # 60 lines over about a second
        ticks: list[str] = []
        while len(ticks) < 60:
            answer = json.loads(following.next())
            assert answer["cursor"] and answer["replicas"][0]["skipped"] == 0
            ticks += [line for r in answer["replicas"] for line in r["lines"]]
        assert ticks == [f"tick {i}" for i in range(60)]
        httpx.get(f"http://127.0.0.1:{port}/say/after")
        assert json.loads(following.next())["replicas"][0]["lines"] == ["after"]
    finally:
        code, err = following.interrupt()
    assert code == 130 and "Traceback" not in err, err


def test_logs_follow_for_people_prefixes_each_line_with_its_replica(
    server: Server, tmp_path: Path
) -> None:
    port = declare(server, tmp_path, "chatty", talker=True)
    deployed(server, "chatty", "v1")
    httpx.get(f"http://127.0.0.1:{port}/say/first")
    following = Following(server, "logs", "chatty", "-r", "v1", "--follow", "--tail", "1")
    try:
        assert following.next() == "[0] first\n"  # the tail
        httpx.get(f"http://127.0.0.1:{port}/say/hello")
        assert following.next() == "[0] hello\n"
    finally:
        code, err = following.interrupt()
    assert code == 130 and "Traceback" not in err, err
