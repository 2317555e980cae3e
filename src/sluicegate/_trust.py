"""Which certificates an HTTPS client of Sluicegate trusts, and words for when it does not.

Every client (CLI, agent, SDK, webhooks) verifies the server's certificate: against a private
CA file when one is given (``--ca-file``), else the system's trust (``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set, else certifi's bundle, as httpx does). There is no switch that
turns verification off. Standard library only: the SDK imports it.
"""

from __future__ import annotations

import ssl

from sluicegate.errors import SluicegateError

__all__ = ["ca_context", "client_tls", "pinned_context", "untrusted_reason"]


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


def _no_password() -> bytes:
    raise ValueError("encrypted private keys are not supported")


def client_tls(
    ca_file: str | None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext | bool:
    """``ca_context``, plus a client certificate to present (mutual TLS, ``sluice server
    --tls-client-ca``). With a certificate but no CA file the system's trust is used
    (SSL_CERT_FILE/SSL_CERT_DIR, else OpenSSL's default paths). SluicegateError naming the
    option for a file that cannot be used."""
    if not client_cert:
        if client_key:
            raise SluicegateError("--client-key needs --client-cert")
        return ca_context(ca_file)
    ctx = ca_context(ca_file)
    if not isinstance(ctx, ssl.SSLContext):
        ctx = ssl.create_default_context()
    try:
        ctx.load_cert_chain(client_cert, client_key or None, password=_no_password)
    except FileNotFoundError as exc:
        raise SluicegateError(f"--client-cert/--client-key: {exc.filename}: no such file") from exc
    except ValueError as exc:
        raise SluicegateError(f"--client-key {client_key}: {exc}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise SluicegateError(
            f"--client-cert {client_cert} / --client-key {client_key}: not a matching PEM"
            f" certificate and key ({exc})"
        ) from exc
    return ctx


def untrusted_reason(exc: BaseException, url: str, option: str = "--ca-file") -> str | None:
    """When ``exc`` (or what caused it) is a failed certificate verification, or the server
    refusing us for want of a client certificate: a sentence saying so and how to fix it;
    else None."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain httpx builds is short; bound it anyway
        if seen is None:
            break
        text = str(seen)
        if "CERTIFICATE_REQUIRED" in text or "ALERT_BAD_CERTIFICATE" in text:
            return (
                f"the server at {url} requires a client certificate its CA signed (mutual"
                " TLS): give --client-cert PATH and --client-key PATH"
            )
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            detail = getattr(seen, "verify_message", None) or "certificate verify failed"
            return (
                f"the server's TLS certificate at {url} is not trusted ({detail}): give the CA"
                f" that signed it with {option} PATH (or SSL_CERT_FILE)"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def pinned_context(cert_files: list[str]) -> ssl.SSLContext:
    """A client context that accepts exactly the leaf certificates in ``cert_files`` (the
    first PEM block of each) and nothing else: for Sluicegate calling its own router's TLS
    listener on loopback (http hooks), where the name is 127.0.0.1 and the CA may be one
    this host does not trust. Pinned, not unverified. OSError/ssl.SSLError if unusable."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the exact certificates are pinned instead
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned leaf is its own anchor
    end = "-----END CERTIFICATE-----"
    for path in cert_files:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read()
        if end not in text:
            raise ssl.SSLError(f"{path} has no PEM certificate")
        ctx.load_verify_locations(cadata=text[: text.index(end) + len(end)] + "\n")
    return ctx
