"""``sluice certs dev``: a local CA and a server certificate that real TLS clients accept."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

from sluicegate.router._tls import load_certificates
from sluicegate.spec.router import TlsSpec
from tests._support import REPO_ROOT


def certs_dev(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", "certs", "dev", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, name: str) -> str:
    """Complete a TLS handshake over a socket pair; the version the client got."""
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(b, server_side=True) as s:
                s.recv(1)
        except (OSError, ssl.SSLError) as exc:
            errors.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(a, server_hostname=name) as c:
            version = c.version() or ""
            c.sendall(b"x")
    finally:
        t.join(10)
    return version


def test_certs_dev_makes_a_ca_and_a_server_certificate_clients_verify(tmp_path: Path) -> None:
    out = certs_dev(tmp_path / "certs", "--name", "shop.test", "--name", "127.0.0.1")
    assert out.returncode == 0, out.stderr
    d = tmp_path / "certs"
    assert stat.S_IMODE((d / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(d / "server.pem", d / "server.key")
    client = ssl.create_default_context(cafile=str(d / "ca.pem"))
    assert _handshake(server, client, "shop.test") in ("TLSv1.2", "TLSv1.3")
    assert _handshake(server, client, "127.0.0.1")
    # The router takes the same files and reads the names from them.
    tls = TlsSpec(certificates=[{"cert": str(d / "server.pem"), "key": str(d / "server.key")}])
    assert load_certificates(tls, "tls").default.names == ("shop.test",)


def test_certs_dev_does_not_overwrite_without_force(tmp_path: Path) -> None:
    assert certs_dev(tmp_path).returncode == 0
    before = (tmp_path / "ca.key").read_bytes()
    again = certs_dev(tmp_path)
    assert again.returncode != 0
    assert "already exist" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "ca.key").read_bytes() == before
    assert certs_dev(tmp_path, "--force").returncode == 0
    assert (tmp_path / "ca.key").read_bytes() != before
