"""Test certificates with trustme: write a leaf certificate and key as PEM files."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["client_context", "peer_names", "write_leaf"]


def write_leaf(directory: Path, name: str, leaf: trustme.LeafCert) -> dict[str, str]:
    """``{"cert": path, "key": path}`` as a listener's ``tls.certificates`` entry."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    leaf.private_key_pem.write_to_path(str(key))
    # Leaf first, then the chain (trustme's leaf is signed by the CA directly).
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return {"cert": str(cert), "key": str(key)}


def client_context(ca: trustme.CA, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context trusting ``ca`` (hostname check off to look at any certificate)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = check_hostname
    return ctx


def peer_names(sock: ssl.SSLSocket) -> list[str]:
    """The DNS names of the certificate the server presented."""
    cert = sock.getpeercert()
    assert cert is not None
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
