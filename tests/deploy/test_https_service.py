"""A service served over HTTPS end to end: a real server deploys the sample app behind a
service listener with two certificates (chosen by SNI) and a plain-HTTP redirect port."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
import yaml

from tests._support import APP_PATH, free_port
from tests._support.server import running_server
from tests._support.tls import client_context, peer_names, write_leaf

pytestmark = pytest.mark.slow  # real servers, deployments

APP = [sys.executable, str(APP_PATH)]


def test_a_service_is_served_over_https_with_two_certificates_and_a_redirect(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    shop = write_leaf(tmp_path, "shop", ca.issue_cert("shop.example"))
    api = write_leaf(tmp_path, "api", ca.issue_cert("api.example"))
    port, test_port, redirect = free_port(), free_port(), free_port()
    spec = {
        "service": "shop",
        "listener": {
            "port": port,
            "test_port": test_port,
            "tls": {"certificates": [shop, api]},
            "redirect_port": redirect,
        },
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [*APP, "--port", "{port}", "--version", "{revision}"],
                "stop_grace": "2s",
            }
        },
        "deployment": {
            "termination_wait": "0s",
            # Through the TLS test listener: the hook trusts exactly the service's certificates.
            "hooks": {"before_allow_traffic": [{"http": {"path": "/healthz"}}]},
        },
    }
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(spec))
    with running_server(tmp_path / "state", ["--no-default-guards"]) as server:
        server.cli("apply", "-f", str(path))
        out = server.cli("deploy", "shop", "-r", "v1")
        found = re.search(r"deployment (\S+):", out)
        assert found, out
        done = server.wait_phase(found.group(1), {"succeeded"})
        hook = [e["message"] for e in done["events"] if "/healthz" in e["message"]]
        assert any(f"GET https://127.0.0.1:{test_port}/healthz answered 200" in m for m in hook), (
            done["events"]
        )

        ctx = client_context(ca)
        for name in ("shop.example", "api.example"):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                assert peer_names(s) == [name]
                s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b"hello from v1" in answer

        plain = http.client.HTTPConnection("127.0.0.1", redirect, timeout=10)
        plain.request("GET", "/cart?id=7", headers={"Host": "shop.example"})
        r = plain.getresponse()
        r.read()
        plain.close()
        assert r.status == 308
        assert r.getheader("Location") == f"https://shop.example:{port}/cart?id=7"

        bad = yaml.safe_load(path.read_text())
        bad["listener"]["tls"]["certificates"][1]["key"] = shop["key"]  # not api's key
        path.write_text(yaml.safe_dump(bad))
        refused = subprocess.run(
            [sys.executable, "-m", "sluicegate", "apply", "-f", str(path)],
            env={**os.environ, "SLUICE_URL": server.url, "SLUICE_TOKEN": server.token},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0  # the router would refuse it: never stored
        assert "listener.tls.certificates[1].key" in refused.stderr
        assert "is not the private key of" in refused.stderr
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="api.example") as s:
            assert peer_names(s) == ["api.example"]  # the old certificates keep serving
