"""``sluice keys create --env`` against a real ``sluice server``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests._support import REPO_ROOT
from tests._support.server import running_server


def test_keys_create_prints_an_agent_key_that_is_no_reader_elsewhere(tmp_path: Path) -> None:
    with running_server(tmp_path / "state") as server:
        key = server.cli("keys", "create", "--env", "prod").strip()
        assert key.startswith("sgt_")
        r = httpx.get(f"{server.url}/v1/services", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403 and "reader" in r.json()["error"]
        env = {**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token}
        out = subprocess.run(
            [sys.executable, "-m", "sluicegate", "token", "create", "--role", "agent"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            check=False,
        )
        assert out.returncode != 0
        assert "env" in out.stderr + out.stdout
