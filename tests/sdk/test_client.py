"""The in-process SDK client against a real sync server and a real agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sluicegate.sdk import Client, ErrorCode, Reason
from tests._support.flag_sync import SyncServer, bool_flag_set, make_snapshot, start_agent


def _wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_client_evaluates_in_process_and_follows_updates_from_the_server(
    sync_server: SyncServer,
) -> None:
    sync_server.publish(make_snapshot(1, bool_flag_set(on_ids=("alice",))))
    client = Client(sync_server.url, env="prod", key=sync_server.token)
    try:
        events: list[tuple[str, int | None]] = []
        client.on_change(lambda e, s: events.append((e, None if s is None else s.version)))
        assert client.wait_ready(10)
        assert client.get_boolean("new-checkout", {"targetingKey": "alice"}, False) is True
        assert client.get_boolean("new-checkout", {"targetingKey": "bob"}, True) is False
        res = client.evaluate("nope", {"targetingKey": "bob"}, default=7)
        assert (res.value, res.reason, res.error_code) == (
            7,
            Reason.ERROR,
            ErrorCode.FLAG_NOT_FOUND,
        )
        sent = sync_server.publish(make_snapshot(2, bool_flag_set(on_ids=("alice", "bob"))))
        assert _wait(lambda: client.get_boolean("new-checkout", {"targetingKey": "bob"}, False))
        print(f"publish -> SDK evaluates v2: {(time.monotonic() - sent) * 1000:.1f} ms")
        assert client.version == 2
        assert ("changed", 2) in events
    finally:
        client.close()


def test_client_before_its_first_snapshot_returns_the_default(tmp_path: Path) -> None:
    client = Client("http://127.0.0.1:9", start=False)
    res = client.evaluate("new-checkout", {"targetingKey": "a"}, default=True)
    assert (res.value, res.error_code) == (True, ErrorCode.PARSE_ERROR)
    assert client.get_string("x", None, "dflt") == "dflt"


def test_client_through_the_agent_in_a_forked_child_receives_updates(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    sync_server.publish(make_snapshot(1, bool_flag_set()))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
        client = Client(agent.url)
        try:
            assert client.wait_ready(10)
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: a pre-fork worker
                try:
                    os.close(read_fd)
                    os.write(write_fd, b"forked\n")
                    ok = _wait(
                        lambda: client.get_boolean(
                            "new-checkout", {"targetingKey": "carol"}, False
                        ),
                        timeout=15,
                    )
                    os.write(write_fd, json.dumps({"ok": ok, "v": client.version}).encode())
                finally:
                    os._exit(0)
            os.close(write_fd)
            with os.fdopen(read_fd) as pipe:
                assert pipe.readline() == "forked\n"
                time.sleep(0.3)  # let the child's updater connect
                sync_server.publish(make_snapshot(2, bool_flag_set(on_ids=("carol",))))
                result = json.loads(pipe.read())
            os.waitpid(pid, 0)
            assert result == {"ok": True, "v": 2}
            assert _wait(lambda: client.version == 2)  # and the parent too
        finally:
            client.close()


def test_importing_the_sdk_loads_no_web_framework_or_database() -> None:
    code = (
        "import sys, sluicegate.sdk; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic','fastapi','starlette','sqlalchemy','uvicorn','yaml','httpx')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
