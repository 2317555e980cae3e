"""A local CA and a server certificate signed by it, for trying HTTPS (``sluice certs dev``).

Not for production: the CA key sits next to the certificates. Made with ``cryptography``
(EC P-256 keys, SHA-256 signatures); the time comes in as an argument.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevCertificates", "make_dev_certificates"]


@dataclass(frozen=True)
class DevCertificates:
    ca_cert: bytes  # PEM: what clients trust (--ca-file, SSL_CERT_FILE)
    ca_key: bytes  # PEM: keep private; signs more certificates
    cert: bytes  # PEM: the server certificate (for tls.certificates[].cert, --tls-cert)
    key: bytes  # PEM: its key (tls.certificates[].key, --tls-key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_dev_certificates(
    names: list[str], now: datetime.datetime, days: int = 90
) -> DevCertificates:
    """A CA valid 10 years and a certificate for ``names`` (DNS names or IP addresses, the
    first also the common name) valid ``days`` from ``now``."""
    if not names:
        raise ValueError("at least one name is needed")
    start = now - datetime.timedelta(minutes=5)  # a little slack for clocks behind ours
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sluicegate dev CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return DevCertificates(
        ca.public_bytes(pem), _key_pem(ca_key), cert.public_bytes(pem), _key_pem(key)
    )
