"""HTTPS for the control-plane API: check the ``sluice server --tls-*`` files before anything
starts, and refuse plain HTTP beyond loopback (bearer tokens would cross the network in clear).
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any

from sluicegate.errors import SluicegateError

__all__ = ["api_tls", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _no_password() -> bytes:
    raise ValueError("encrypted private keys are not supported")


def api_tls(
    host: str,
    cert: Path | None,
    key: Path | None,
    client_ca: Path | None,
    insecure_http: bool,
) -> dict[str, Any]:
    """uvicorn's ssl keyword arguments ({} for plain HTTP). SluicegateError naming the
    option when a file cannot serve, or when plain HTTP would leave loopback unasked."""
    if (cert is None) != (key is None):
        raise SluicegateError("--tls-cert and --tls-key go together: give both or neither")
    if cert is None or key is None:
        if client_ca is not None:
            raise SluicegateError("--tls-client-ca needs --tls-cert and --tls-key")
        if not is_loopback(host) and not insecure_http:
            raise SluicegateError(
                f"refusing to serve the API on {host} over plain HTTP: API tokens would cross"
                " the network in clear. Give --tls-cert and --tls-key (`sluice certs dev`"
                " makes a pair to try), or --insecure-http if a TLS proxy in front of this"
                " port terminates HTTPS"
            )
        return {}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise SluicegateError(f"{option} {path}: no such file")
    try:
        ctx.load_cert_chain(str(cert), str(key), password=_no_password)
    except ValueError as exc:
        raise SluicegateError(f"--tls-key {key}: {exc}") from exc
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise SluicegateError(f"--tls-key {key} is not the private key of {cert}") from exc
        raise SluicegateError(
            f"--tls-cert {cert} / --tls-key {key}: not a usable PEM certificate and key"
            f" ({exc.reason or exc})"
        ) from exc
    kwargs: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise SluicegateError(
                f"--tls-client-ca {client_ca}: not a readable PEM CA file ({exc})"
            ) from exc
        kwargs |= {"ssl_ca_certs": str(client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return kwargs
