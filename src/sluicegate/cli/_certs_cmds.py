"""``sluice certs dev``: a local CA and server certificate to try HTTPS with."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import click


@click.group()
def certs() -> None:
    """Certificates for trying HTTPS (docs/tls.md)."""


@certs.command("dev")
@click.option(
    "--dir",
    "directory",
    default="certs",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write ca.pem, ca.key, server.pem and server.key.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    help="A DNS name or IP address the certificate serves (repeat; default: localhost,"
    " 127.0.0.1, ::1).",
)
@click.option(
    "--days", default=90, show_default=True, type=click.IntRange(1, 825), help="Validity."
)
@click.option("--force", is_flag=True, help="Replace files that already exist.")
def dev(directory: Path, names: tuple[str, ...], days: int, force: bool) -> None:
    """Make a local CA (ca.pem, ca.key) and a server certificate it signed (server.pem,
    server.key) for trying HTTPS: on a router listener's tls.certificates, on
    `sluice server --tls-cert/--tls-key`, trusted by clients with --ca-file ca.pem.
    Not for production: anyone with ca.key can make certificates your clients trust."""
    from sluicegate._devcerts import make_dev_certificates

    wanted = list(names) or ["localhost", "127.0.0.1", "::1"]
    files = {
        "ca.pem": False,
        "ca.key": True,
        "server.pem": False,
        "server.key": True,
    }  # name -> secret (0600)
    existing = [n for n in files if (directory / n).exists()]
    if existing and not force:
        raise click.UsageError(
            f"{', '.join(str(directory / n) for n in existing)} already exist(s):"
            " use --force to replace, or another --dir"
        )
    made = make_dev_certificates(wanted, datetime.datetime.now(datetime.UTC), days)
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "ca.pem": made.ca_cert,
        "ca.key": made.ca_key,
        "server.pem": made.cert,
        "server.key": made.key,
    }
    for name, secret in files.items():
        path = directory / name
        tmp = path.with_name(name + ".tmp")
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600 if secret else 0o644
        )
        with os.fdopen(fd, "wb") as f:
            f.write(contents[name])
        os.replace(tmp, path)
    click.echo(f"wrote {directory}/ca.pem, ca.key, server.pem, server.key for {', '.join(wanted)}")
    cert, key = directory / "server.pem", directory / "server.key"
    click.echo(f"  server: sluice server --tls-cert {cert} --tls-key {key}")
    click.echo(f"  clients: --ca-file {directory}/ca.pem (or SSL_CERT_FILE={directory}/ca.pem)")


COMMANDS = [certs]
