"""``sluice deploy --watch`` and ``sluice deployments get --watch`` against a real server: the
exit code says how the deployment ended (0 succeeded, 3 rolled back, 4 failed, 5 stopped),
and the last line says how and why."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._support import APP_PATH, REPO_ROOT, free_port
from tests._support.server import Server, running_server

# Fails for revisions named bad-*: as a before_allow_traffic hook it rolls those back (or
# fails them, when there is no previous revision to go back to).
HOOK = [sys.executable, "-c", "import sys; sys.exit('{revision}'.startswith('bad-'))"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("deploy-cmds") / "state", ["--no-default-guards"]
    ) as s:
        yield s


def sluice(server: Server, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )


def apply(server: Server, tmp_path: Path, name: str, hook: bool = False, **deployment: Any) -> None:
    """Declare the sample app as service ``name``; ``hook`` adds ``HOOK`` before traffic."""
    hooks = {"before_allow_traffic": [{"command": HOOK, "timeout": "30s"}]} if hook else {}
    spec = {
        "service": name,
        "listener": {"port": free_port(), "test_port": free_port()},
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
        "deployment": {"termination_wait": "0s", "hooks": hooks, **deployment},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    server.cli("apply", "-f", str(path))


def deploy_id(output: str) -> str:
    found = re.search(r"deployment (\S+):", output)
    assert found, output
    return found.group(1)


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    return out.stdout.strip().splitlines()[-1]


def test_a_deployment_that_succeeds_exits_0_and_says_so(server: Server, tmp_path: Path) -> None:
    apply(server, tmp_path, "fine")
    out = sluice(server, "deploy", "fine", "-r", "v1", "--watch")
    assert out.returncode == 0, out.stderr + out.stdout
    dep = deploy_id(out.stdout)
    assert last_line(out) == f"deployment {dep} succeeded"
    assert server.api(f"/deployments/{dep}")["phase"] == "succeeded"


def test_a_deployment_rolled_back_by_a_failing_hook_exits_3_with_the_reason(
    server: Server, tmp_path: Path
) -> None:
    apply(server, tmp_path, "hooked", hook=True)
    server.wait_phase(deploy_id(server.cli("deploy", "hooked", "-r", "v1")), {"succeeded"})
    out = sluice(server, "deploy", "hooked", "-r", "bad-v2", "--watch")
    assert out.returncode == 3, out.stderr + out.stdout
    dep = deploy_id(out.stdout)
    assert server.api(f"/deployments/{dep}")["phase"] == "rolled_back"
    assert last_line(out).startswith(
        f"deployment {dep} rolled back: before_allow_traffic hook 1 of 1 failed"
    ), out.stdout


def test_a_first_deployment_whose_hook_fails_exits_4_as_failed(
    server: Server, tmp_path: Path
) -> None:
    apply(server, tmp_path, "doomed", hook=True)
    out = sluice(server, "deploy", "doomed", "-r", "bad-v1", "--watch")
    assert out.returncode == 4, out.stderr + out.stdout
    dep = deploy_id(out.stdout)
    assert server.api(f"/deployments/{dep}")["phase"] == "failed"
    assert last_line(out).startswith(
        f"deployment {dep} failed: before_allow_traffic hook 1 of 1 failed"
    ), out.stdout


def test_a_stopped_deployment_exits_5_for_deployments_get_watch(
    server: Server, tmp_path: Path
) -> None:
    apply(
        server, tmp_path, "manual", config={"steps": [{"weight": 10}, {"pause": "until_promoted"}]}
    )
    server.wait_phase(deploy_id(server.cli("deploy", "manual", "-r", "v1")), {"succeeded"})
    dep = deploy_id(server.cli("deploy", "manual", "-r", "v2"))
    server.wait_phase(dep, {"paused_until_promoted"})
    env = {**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token}
    with subprocess.Popen(
        [sys.executable, "-m", "sluicegate", "deployments", "get", dep, "--watch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    ) as watch:
        try:
            server.cli("stop", dep)
            stdout, stderr = watch.communicate(timeout=90)
        finally:
            if watch.poll() is None:
                watch.kill()
    assert watch.returncode == 5, stderr + stdout
    assert stdout.strip().splitlines()[-1] == f"deployment {dep} stopped: stopped by first-admin"


def test_watching_an_unknown_deployment_exits_2(server: Server) -> None:
    out = sluice(server, "deployments", "get", "no-such-deployment", "--watch")
    assert out.returncode == 2, out.stderr + out.stdout
    assert "no-such-deployment" in out.stderr


def test_rollback_by_service_name_reaches_its_active_deployment(
    server: Server, tmp_path: Path
) -> None:
    apply(
        server, tmp_path, "byname", config={"steps": [{"weight": 10}, {"pause": "until_promoted"}]}
    )
    server.wait_phase(deploy_id(server.cli("deploy", "byname", "-r", "v1")), {"succeeded"})
    dep = deploy_id(server.cli("deploy", "byname", "-r", "v2"))
    server.wait_phase(dep, {"paused_until_promoted"})
    out = sluice(server, "deployments", "get", dep)
    assert out.returncode == 0, out.stderr
    assert "10% green" in out.stdout and "2 of 3 (Custom steps)" in out.stdout, out.stdout
    said = server.cli("rollback", "byname")
    assert said.strip() == f"rollback requested for byname (deployment {dep})"
    assert server.wait_phase(dep, {"rolled_back"})["reason"] == "rolled back by first-admin"
    nothing = sluice(server, "stop", "byname")
    assert nothing.returncode == 2 and "no active deployment" in nothing.stderr
    events = sluice(server, "events", "--service", "byname", "--kind", "deployment.rolled_back")
    assert dep in events.stdout and "deployment.rolled_back" in events.stdout, events.stdout
    assert "service.applied" not in events.stdout
