"""``sluice --log-level debug --log-json router --workers 2``: the router and every worker
log at the level and in the format the command line gave (the workers get them handed on)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests._support import REPO_ROOT, free_port, router_config


def run_until_ready(tmp_path: Path, *global_args: str, workers: int = 2) -> list[str]:
    """Start a standalone router with ``global_args`` before ``router``, wait for its admin
    API, stop it; its stderr lines."""
    admin = free_port()
    path = tmp_path / "router.yaml"
    path.write_text(
        yaml.safe_dump(
            router_config({"blue": ["127.0.0.1:9"]}, listener_port=free_port(), admin_port=admin)
        )
    )
    command = ["router", "--config", str(path), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluicegate", *global_args, *command],
        env={**os.environ, "SLUICE_ADMIN_TOKEN": "test-token"},
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the router exited"
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{admin}/v1/status",
                    headers={"Authorization": "Bearer test-token"},
                    timeout=1,
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the router did not start"
            time.sleep(0.1)
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return err.splitlines()


def test_the_router_and_each_worker_log_json_at_the_level_given(tmp_path: Path) -> None:
    lines = run_until_ready(tmp_path, "--log-level", "debug", "--log-json")
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line
    assert any(
        r["level"] == "DEBUG" and r["logger"] == "sluicegate.router._run" for r in records
    ), lines
    for worker in ("worker-0", "worker-1"):
        mine = [r for r in records if r.get("tag") == worker]
        assert any(r["level"] == "DEBUG" and "starting" in r["message"] for r in mine), lines


def test_a_higher_level_silences_the_router_and_its_workers_below_it(tmp_path: Path) -> None:
    lines = run_until_ready(tmp_path, "--log-level", "warning")
    assert not [line for line in lines if " INFO " in line or " DEBUG " in line], lines
