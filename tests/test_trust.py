"""Which certificates Sluicegate's clients trust: CA files, pinned listener certificates, and
the sentence an untrusted certificate gets (real TLS handshakes over socket pairs)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
import trustme

from sluicegate._trust import ca_context, pinned_context, untrusted_reason
from sluicegate.errors import SluicegateError
from tests._support.tls import write_leaf


def handshake(leaf: trustme.LeafCert, client: ssl.SSLContext) -> None:
    """A server presenting ``leaf``; raises what the client's handshake raises."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server)
    a, b = socket.socketpair()

    def serve() -> None:
        try:
            with server.wrap_socket(b, server_side=True) as s:
                s.recv(1)
        except OSError:
            pass  # the client refused us: its side says why

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client.wrap_socket(a, server_hostname="127.0.0.1") as c:
            c.sendall(b"x")
    finally:
        a.close()
        t.join(10)


def test_a_pinned_context_accepts_exactly_the_listed_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    mine = ca.issue_cert("shop.example")
    other = ca.issue_cert("shop.example")  # same CA, same name: still not pinned
    ctx = pinned_context([write_leaf(tmp_path, "mine", mine)["cert"]])
    handshake(mine, ctx)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(other, ctx)


def test_a_ca_file_is_trusted_and_a_missing_one_names_the_option(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ctx = ca_context(str(tmp_path / "ca.pem"))
    assert isinstance(ctx, ssl.SSLContext)
    handshake(ca.issue_cert("127.0.0.1"), ctx)
    assert ca_context(None) is True  # the system's trust (SSL_CERT_FILE), verified
    with pytest.raises(SluicegateError, match=r"--ca-file .*nope.pem: no such file"):
        ca_context(str(tmp_path / "nope.pem"))
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(SluicegateError, match="not a PEM CA certificate file"):
        ca_context(str(tmp_path / "junk.pem"))


def test_an_untrusted_certificate_is_explained_with_the_fix() -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as exc:
        handshake(trustme.CA().issue_cert("127.0.0.1"), ssl.create_default_context())
    wrapped = RuntimeError("connect failed")
    wrapped.__cause__ = exc.value
    said = untrusted_reason(wrapped, "https://h:7070")
    assert said is not None
    assert said.startswith("the server's TLS certificate at https://h:7070 is not trusted (")
    assert said.endswith("give the CA that signed it with --ca-file PATH (or SSL_CERT_FILE)")
    assert untrusted_reason(ConnectionRefusedError(), "https://h:7070") is None
