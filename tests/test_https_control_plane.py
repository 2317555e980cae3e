"""The control plane over HTTPS: a real ``sluice server --tls-cert --tls-key`` with a trustme CA,
driven by the CLI and synced from by an agent, both verifying its certificate."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests._support import REPO_ROOT, free_port
from tests._support.flag_sync import start_agent
from tests._support.server import Server, running_server
from tests._support.tls import write_leaf
from tests.test_flags_e2e import V1

SLUICE = [sys.executable, "-m", "sluicegate"]


pytestmark = pytest.mark.slow  # real servers, deployments


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("https")
    files = write_leaf(tmp, "server", ca.issue_cert("localhost", "127.0.0.1"))
    args = ["--tls-cert", files["cert"], "--tls-key", files["key"]]
    with running_server(tmp / "state", args) as s:
        s.url = f"https://127.0.0.1:{s.port}"
        yield s


def sluice(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SLUICE_CA_FILE")}
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        env={**base, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def test_the_cli_works_over_https_with_the_ca_file(server: Server, ca_file: str) -> None:
    out = sluice(server, "flags", "envs", "create", "prod", "--ca-file", ca_file)
    assert out.returncode == 0, out.stderr
    listed = sluice(server, "flags", "envs", "list", env={"SLUICE_CA_FILE": ca_file})
    assert listed.returncode == 0, listed.stderr
    assert "prod" in listed.stdout


def test_the_cli_trusts_ssl_cert_file(server: Server, ca_file: str) -> None:
    out = sluice(server, "flags", "envs", "list", env={"SSL_CERT_FILE": ca_file})
    assert out.returncode == 0, out.stderr


def test_the_cli_refuses_an_untrusted_server_certificate_and_names_ca_file(server: Server) -> None:
    out = sluice(server, "flags", "envs", "list")
    assert out.returncode != 0
    assert "TLS certificate at https://127.0.0.1" in out.stderr
    assert "is not trusted" in out.stderr
    assert "--ca-file PATH" in out.stderr


def test_a_missing_ca_file_is_named(server: Server, tmp_path: Path) -> None:
    out = sluice(server, "flags", "envs", "list", "--ca-file", str(tmp_path / "nope.pem"))
    assert out.returncode != 0
    assert f"--ca-file {tmp_path / 'nope.pem'}: no such file" in out.stderr


def test_an_agent_syncs_over_https_with_its_env_key(
    server: Server, ca_file: str, tmp_path: Path
) -> None:
    ca = {"SLUICE_CA_FILE": ca_file}
    sluice(server, "flags", "envs", "create", "staging", env=ca)
    flags = tmp_path / "v1.yaml"
    flags.write_text(V1)
    applied = sluice(server, "flags", "apply", "-f", str(flags), "--env", "staging", env=ca)
    assert applied.returncode == 0, applied.stderr
    key = sluice(server, "keys", "create", "--env", "staging", env=ca).stdout.strip()
    cache = tmp_path / "cache"
    agent = start_agent(server.url, key, cache, env="staging", extra=["--ca-file", ca_file])
    try:
        agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
        assert agent.value("checkout", "user-1") == "classic"
    finally:
        agent.stop()
    untrusting = start_agent(server.url, key, tmp_path / "cache2", env="staging")
    try:
        untrusting.wait_for(
            lambda: "--ca-file" in untrusting.logs(), what="the untrusted certificate reported"
        )
        assert untrusting.get("/healthz").status_code != 200  # never synced: not ready
        assert "is not trusted" in untrusting.logs()
    finally:
        untrusting.stop()


def _port_and_state(tmp_path: Path) -> list[str]:
    return ["--port", str(free_port()), "--state-dir", str(tmp_path / "state")]


def test_the_server_refuses_plain_http_beyond_loopback(tmp_path: Path) -> None:
    out = subprocess.run(
        [*SLUICE, "server", "--host", "0.0.0.0", *_port_and_state(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert out.returncode != 0
    assert "refusing to serve the API on 0.0.0.0 over plain HTTP" in out.stderr
    assert "--tls-cert and --tls-key" in out.stderr
    assert "--insecure-http" in out.stderr
    assert not (tmp_path / "state").exists()  # refused before any side effect


def test_a_tls_key_that_does_not_match_is_refused_naming_the_option(
    ca: trustme.CA, tmp_path: Path
) -> None:
    a = write_leaf(tmp_path, "a", ca.issue_cert("localhost"))
    b = write_leaf(tmp_path, "b", ca.issue_cert("localhost"))
    out = subprocess.run(
        [
            *SLUICE,
            "server",
            *_port_and_state(tmp_path),
            "--tls-cert",
            a["cert"],
            "--tls-key",
            b["key"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert out.returncode != 0
    assert f"--tls-key {b['key']} is not the private key of {a['cert']}" in out.stderr


def test_with_a_client_ca_the_api_asks_for_a_client_certificate(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    files = write_leaf(tmp_path, "server", ca.issue_cert("127.0.0.1"))
    clients = trustme.CA()
    clients_ca = tmp_path / "clients-ca.pem"
    clients.cert_pem.write_to_path(str(clients_ca))
    ops = write_leaf(tmp_path, "ops", clients.issue_cert("ops@example"))
    stranger = write_leaf(tmp_path, "stranger", trustme.CA().issue_cert("ops@example"))
    args = ["--tls-cert", files["cert"], "--tls-key", files["key"]]
    with running_server(tmp_path / "state", [*args, "--tls-client-ca", str(clients_ca)]) as s:
        s.url = f"https://127.0.0.1:{s.port}"
        ca_env = {"SLUICE_CA_FILE": ca_file}
        mine = ["--client-cert", ops["cert"], "--client-key", ops["key"]]
        out = sluice(s, "flags", "envs", "create", "prod", *mine, env=ca_env)
        assert out.returncode == 0, out.stderr
        client_env = {**ca_env, "SLUICE_CLIENT_CERT": ops["cert"], "SLUICE_CLIENT_KEY": ops["key"]}
        assert "prod" in sluice(s, "flags", "envs", "list", env=client_env).stdout
        for env in (ca_env, {**ca_env, "SLUICE_CLIENT_CERT": stranger["cert"],
                             "SLUICE_CLIENT_KEY": stranger["key"]}):  # fmt: skip
            refused = sluice(s, "flags", "envs", "list", env=env)
            assert refused.returncode != 0
            # The refusal's alert names the client certificate, or (TLS 1.3, often) is lost in
            # the close: then the hint names the options.
            assert "client certificate" in refused.stderr, refused.stderr
            assert "--client-cert" in refused.stderr and "--client-key" in refused.stderr
        url = f"https://127.0.0.1:{s.port}/v1/healthz"
        ctx = ssl.create_default_context(cafile=ca_file)
        clients.issue_cert("svc@example").configure_cert(ctx)
        assert httpx.get(url, verify=ctx).status_code == 200
        flags = tmp_path / "v1.yaml"
        flags.write_text(V1)
        applied = sluice(s, "flags", "apply", "-f", str(flags), "--env", "prod", env=client_env)
        assert applied.returncode == 0, applied.stderr
        key = sluice(s, "keys", "create", "--env", "prod", env=client_env).stdout.strip()
        agent = start_agent(
            s.url, key, tmp_path / "cache", extra=["--ca-file", ca_file, *mine]
        )  # the agent presents its client certificate too
        try:
            agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
            assert agent.value("checkout", "user-1") == "classic"
        finally:
            agent.stop()
