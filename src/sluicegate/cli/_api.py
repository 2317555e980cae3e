"""The CLI's HTTP client: the server from --url/SLUICE_URL; the token from --token/SLUICE_TOKEN
or, to keep it off command lines and out of shell history, --token-file/SLUICE_TOKEN_FILE.
An https:// server's certificate is always verified: against --ca-file/SLUICE_CA_FILE when
given, else the system's trust (SSL_CERT_FILE)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import httpx

from sluicegate._trust import client_tls, untrusted_reason
from sluicegate.errors import SluicegateError, TransientError, error_from_response

__all__ = ["Api", "api_options"]

DEFAULT_URL = "http://127.0.0.1:7070"


_TOKEN_FILE = "sluice_token_file"
_CA_FILE = "sluice_ca_file"
_CLIENT_CERT = "sluice_client_cert"
_CLIENT_KEY = "sluice_client_key"


def _read_token_file(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SluicegateError(f"cannot read the token file {path}: {exc.strerror or exc}") from exc
    if not token:
        raise SluicegateError(f"the token file {path} is empty")
    return token


class Api:
    def __init__(self, url: str, token: str | None) -> None:
        if token is None:
            ctx = click.get_current_context(silent=True)
            path = (ctx.meta.get(_TOKEN_FILE) if ctx else None) or os.environ.get(
                "SLUICE_TOKEN_FILE"
            )
            if path:
                token = _read_token_file(path)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        ctx = click.get_current_context(silent=True)
        meta = ctx.meta if ctx else {}
        verify = client_tls(
            meta.get(_CA_FILE) or os.environ.get("SLUICE_CA_FILE"),
            meta.get(_CLIENT_CERT) or os.environ.get("SLUICE_CLIENT_CERT"),
            meta.get(_CLIENT_KEY) or os.environ.get("SLUICE_CLIENT_KEY"),
        )
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=verify)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            r = self._http.request(method, "/v1" + path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            untrusted = untrusted_reason(exc, self.url)
            if untrusted is not None:
                raise SluicegateError(untrusted) from exc
            hint = "is `sluice server` running? (--url / SLUICE_URL)"
            if self.url.startswith("https:") and isinstance(
                exc, httpx.RemoteProtocolError | httpx.ReadError
            ):
                # A TLS 1.3 server refusing our (missing) client certificate often just
                # closes: the alert saying so is lost.
                hint = (
                    "if the server requires client certificates (sluice server"
                    " --tls-client-ca), give --client-cert and --client-key with one its CA"
                    " signed"
                )
            raise TransientError(
                f"cannot reach the server at {self.url} ({exc!r}); {hint}"
            ) from exc
        if r.status_code < 300:
            return r.json()
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text}
        raise error_from_response(
            r.status_code, data, f"server {method} {path}", auth_hint=" (--token / SLUICE_TOKEN)"
        )


def _remember_token_file(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[_TOKEN_FILE] = value


def _remember(key: str) -> Any:
    def callback(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
        if value:
            ctx.meta[key] = value

    return callback


def api_options(f: Any) -> Any:
    f = click.option(
        "--client-key",
        metavar="PATH",
        expose_value=False,
        callback=_remember(_CLIENT_KEY),
        help="The private key (PEM) of --client-cert (or SLUICE_CLIENT_KEY).",
    )(f)
    f = click.option(
        "--client-cert",
        metavar="PATH",
        expose_value=False,
        callback=_remember(_CLIENT_CERT),
        help="Present this client certificate (PEM) to a server that asks for one (mutual"
        " TLS; or SLUICE_CLIENT_CERT).",
    )(f)
    f = click.option(
        "--ca-file",
        metavar="PATH",
        expose_value=False,
        callback=_remember(_CA_FILE),
        help="Trust the server certificates this CA file (PEM) signed, e.g. a private CA"
        " (or SLUICE_CA_FILE; SSL_CERT_FILE replaces the system's trust).",
    )(f)
    f = click.option(
        "--token-file",
        metavar="PATH",
        expose_value=False,
        callback=_remember_token_file,
        help="Read the API token from this file (or SLUICE_TOKEN_FILE): no secret on the "
        "command line.",
    )(f)
    f = click.option("--token", envvar="SLUICE_TOKEN", help="API token (or SLUICE_TOKEN).")(f)
    f = click.option(
        "--url",
        envvar="SLUICE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Server URL (or SLUICE_URL).",
    )(f)
    return f
