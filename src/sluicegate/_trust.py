"""Which certificates an HTTPS client of Sluicegate trusts, and words for when it does not.

Every client (CLI, agent, SDK, webhooks) verifies the server's certificate: against a private
CA file when one is given (``--ca-file``), else the system's trust (``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set, else certifi's bundle, as httpx does). There is no switch that
turns verification off. Standard library only: the SDK imports it.
"""

from __future__ import annotations

import ssl

from sluicegate.errors import SluicegateError

__all__ = ["ca_context", "untrusted_reason"]


def ca_context(ca_file: str | None, option: str = "--ca-file") -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify``: a context trusting ``ca_file``, or True (the
    default trust). SluicegateError naming ``option`` when the file cannot be used."""
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError as exc:
        raise SluicegateError(f"{option} {ca_file}: no such file") from exc
    except (OSError, ssl.SSLError) as exc:
        raise SluicegateError(f"{option} {ca_file}: not a PEM CA certificate file ({exc})") from exc


def untrusted_reason(exc: BaseException, url: str, option: str = "--ca-file") -> str | None:
    """When ``exc`` (or what caused it) is a failed certificate verification: a sentence
    saying so and how to fix it; else None."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain httpx builds is short; bound it anyway
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            detail = getattr(seen, "verify_message", None) or "certificate verify failed"
            return (
                f"the server's TLS certificate at {url} is not trusted ({detail}): give the CA"
                f" that signed it with {option} PATH (or SSL_CERT_FILE)"
            )
        seen = seen.__cause__ or seen.__context__
    return None
