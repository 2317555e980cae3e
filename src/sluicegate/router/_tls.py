"""TLS termination for listeners: one context per certificate, chosen by SNI, re-read from files.

A TLS listening socket is created once with an outer context (:class:`TlsTerminator`) whose
``sni_callback`` switches each new connection to the context of the certificate that serves
the name the client asked for. Reloading a certificate swaps what the callback picks: new
handshakes get the new certificate, open connections keep theirs.

This is the one place the data plane reads files: the certificate and key files the config
names. A file that cannot serve (missing, not PEM, no DNS names, key not matching) raises
SpecError naming the field; the previous certificates stay in force.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl
from collections.abc import Sequence
from typing import Any

from cryptography import x509

from sluicegate.errors import Problem, SpecError
from sluicegate.spec.router import CIPHER_POLICIES, CertificateSpec, RouterConfig, TlsSpec

__all__ = [
    "Certificate",
    "CertificateSet",
    "TlsTerminator",
    "check_listener_certificates",
    "load_certificates",
    "stamp",
]

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
Stamp = tuple[tuple[int, int, int] | None, ...]


def stamp(certificates: Sequence[CertificateSpec]) -> Stamp:
    """What changes when a certificate or key file is replaced: (inode, size, mtime) of each
    (None for a file that cannot be read), in config order."""
    out: list[tuple[int, int, int] | None] = []
    for c in certificates:
        for path in (c.cert, c.key):
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def configure(ctx: ssl.SSLContext, tls: TlsSpec) -> None:
    """Versions, cipher policy and ALPN of ``tls`` on ``ctx`` (TLS 1.0/1.1 never)."""
    ctx.minimum_version = _VERSIONS[tls.min_version]
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.set_ciphers(CIPHER_POLICIES[tls.ciphers])
    ctx.set_alpn_protocols(["http/1.1"])  # HTTP/2 is not served by this router
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE


class Certificate:
    """A loaded certificate: the names it serves and the context that presents it."""

    __slots__ = ("context", "names", "not_after", "spec")

    def __init__(
        self, spec: CertificateSpec, names: tuple[str, ...], not_after: str, ctx: ssl.SSLContext
    ) -> None:
        self.spec = spec
        self.names = names
        self.not_after = not_after
        self.context = ctx


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise ValueError("encrypted private keys are not supported")


def _load_one(spec: CertificateSpec, tls: TlsSpec, where: str) -> Certificate | list[Problem]:
    try:
        with open(spec.cert, "rb") as f:
            pem = f.read()
    except OSError as exc:
        return [Problem(f"{where}.cert", f"cannot read {spec.cert}: {exc.strerror or exc}")]
    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
    except ValueError:
        return [Problem(f"{where}.cert", f"{spec.cert} is not a PEM certificate")]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not names:
        return [
            Problem(
                f"{where}.cert",
                f"{spec.cert} has no DNS names in subjectAltName (clients and SNI use those,"
                " not the common name)",
            )
        ]
    if not os.path.exists(spec.key):
        return [Problem(f"{where}.key", f"cannot read {spec.key}: no such file")]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure(ctx, tls)
    try:
        ctx.load_cert_chain(spec.cert, spec.key, password=_no_password)
    except ValueError as exc:  # from _no_password
        return [Problem(f"{where}.key", f"{spec.key}: {exc}")]
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            why = f"{spec.key} is not the private key of {spec.cert}"
        else:
            why = f"{spec.key} is not a usable PEM private key ({exc.reason or exc})"
        return [Problem(f"{where}.key", why)]
    except OSError as exc:
        return [Problem(f"{where}.key", f"cannot read {spec.key}: {exc.strerror or exc}")]
    expires = leaf.not_valid_after_utc.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Certificate(spec, names, expires, ctx)


def load_certificates(tls: TlsSpec, where: str) -> CertificateSet:
    """Read every certificate of ``tls``; SpecError naming each field that cannot serve.

    ``where`` is the path of the tls block (``listeners[0].tls``).
    """
    problems: list[Problem] = []
    certs: list[Certificate] = []
    for j, spec in enumerate(tls.certificates):
        got = _load_one(spec, tls, f"{where}.certificates[{j}]")
        if isinstance(got, list):
            problems += got
        else:
            certs.append(got)
    if problems:
        raise SpecError(problems)
    return CertificateSet(certs)


def check_listener_certificates(config: RouterConfig) -> None:
    """Load every TLS listener's certificates as the router would at start (``sluice router
    --check`` and before starting): SpecError naming each field that cannot serve."""
    problems: list[Problem] = []
    for i, listener in enumerate(config.listeners):
        if listener.tls is not None:
            try:
                load_certificates(listener.tls, f"listeners[{i}].tls")
            except SpecError as exc:
                problems += exc.problems
    if problems:
        raise SpecError(problems)


class CertificateSet:
    """Which certificate serves a server name: exact name, else wildcard (``*.example.com``
    covers one label), else the first certificate (the default). Earlier certificates win
    a name two of them carry."""

    __slots__ = ("certificates", "default", "exact", "wildcard")

    def __init__(self, certificates: Sequence[Certificate]) -> None:
        self.certificates = tuple(certificates)
        self.default = self.certificates[0]
        self.exact: dict[str, Certificate] = {}
        self.wildcard: dict[str, Certificate] = {}
        for cert in self.certificates:
            for name in cert.names:
                if name.startswith("*."):
                    self.wildcard.setdefault(name[1:], cert)  # key ".example.com"
                else:
                    self.exact.setdefault(name, cert)

    def select(self, server_name: str | None) -> Certificate:
        if not server_name:
            return self.default
        name = server_name.lower().rstrip(".")
        cert = self.exact.get(name)
        if cert is not None:
            return cert
        dot = name.find(".")
        if dot > 0:
            cert = self.wildcard.get(name[dot:])
            if cert is not None:
                return cert
        return self.default


class TlsTerminator:
    """The outer context of one TLS listening socket, and the certificates it serves now.

    Versions, ciphers and ALPN are read from the outer context when a connection starts;
    the SNI callback then hands the connection the chosen certificate's context.
    """

    __slots__ = ("certs", "context", "error", "spec", "stamp")

    def __init__(self) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.sni_callback = self._sni
        self.certs: CertificateSet | None = None
        self.spec: TlsSpec | None = None
        self.stamp: Stamp = ()
        self.error: str | None = None  # why the files on disk are not the ones serving

    def install(self, tls: TlsSpec, certs: CertificateSet, files: Stamp) -> None:
        configure(self.context, tls)
        self.spec, self.certs, self.stamp, self.error = tls, certs, files, None

    def refresh(
        self, listener: str, tls: TlsSpec, where: str, log: logging.Logger, force: bool = False
    ) -> None:
        """Load the files again if they changed since last tried (or ``force``: SIGHUP). A
        set that cannot serve is refused (logged, kept in ``error``), the old one keeps
        serving, and it is tried again when the files change once more."""
        files = stamp(tls.certificates)
        if files == self.stamp and not force:
            return
        self.stamp = files  # tried once per change, not once per second
        try:
            certs = load_certificates(tls, where)
        except SpecError as exc:
            self.error = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
            log.error(
                "listener %s: new certificate files refused, the previous ones keep serving: %s",
                listener,
                self.error,
            )
            return
        self.install(tls, certs, files)
        names = ", ".join(",".join(c.names) for c in certs.certificates)
        log.info("listener %s: certificates reloaded (%s)", listener, names)

    def _sni(self, conn: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        certs = self.certs
        if certs is not None:
            conn.context = certs.select(server_name).context

    def status(self) -> dict[str, Any]:
        certs = self.certs.certificates if self.certs is not None else ()
        return {
            "certificates": [
                {"cert": c.spec.cert, "names": list(c.names), "not_after": c.not_after}
                for c in certs
            ],
            "error": self.error,
        }
