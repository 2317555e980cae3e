"""A router listener's HTTPS: certificates, versions and cipher policy; redirects; trusted
proxies (docs/tls.md). Part of the router config's user-facing contract: extend, never rename."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from sluicegate.spec._model import SpecModel

__all__ = ["CIPHER_POLICIES", "CertificateSpec", "RedirectSpec", "TlsSpec", "check_network"]


# Named cipher policies for TLS 1.2 (OpenSSL cipher strings), like ALB's security policies.
# TLS 1.3 always uses OpenSSL's own AEAD suites (Python cannot narrow them). docs/tls.md
CIPHER_POLICIES: dict[str, str] = {
    # Forward secrecy and AEAD only: ECDHE with AES-GCM or ChaCha20-Poly1305.
    "default": "ECDHE+AESGCM:ECDHE+CHACHA20",
    # Adds ECDHE with AES-CBC for old clients (still forward secret; no RSA key exchange).
    "compatible": "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES",
}


class CertificateSpec(SpecModel):
    """A PEM certificate chain file and its private key file. The names it serves are read
    from the certificate's subjectAltName DNS entries, not repeated here."""

    cert: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]


def _tls_version(value: Any) -> Any:
    # YAML reads an unquoted 1.2 as a float; "1.2" and 1.2 mean the same version.
    if isinstance(value, float | int) and not isinstance(value, bool):
        value = f"{value:.1f}"
    if value in ("1.0", "1.1"):
        raise ValueError(f"TLS {value} is refused (deprecated by RFC 8996): use 1.2 or 1.3")
    return value


class TlsSpec(SpecModel):
    """TLS termination on a listener: the first certificate is the default, the others are
    chosen by the server name the client sends (SNI)."""

    certificates: list[CertificateSpec] = Field(min_length=1, max_length=256)
    min_version: Annotated[Literal["1.2", "1.3"], BeforeValidator(_tls_version)] = "1.2"
    ciphers: str = "default"

    @field_validator("ciphers")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in CIPHER_POLICIES:
            raise ValueError(f"unknown cipher policy {v!r} (known: {', '.join(CIPHER_POLICIES)})")
        return v


class RedirectSpec(SpecModel):
    """Answer every request with a redirect to the same host and path on another port
    (HTTP to HTTPS): ``{to_port: 8443, status: 308}``."""

    to_port: Annotated[int, Field(ge=1, le=65535)]
    status: Literal[301, 302, 303, 307, 308] = 308
    scheme: Literal["https", "http"] = "https"


def check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or network (like 10.0.0.0/8)") from exc
    return value
