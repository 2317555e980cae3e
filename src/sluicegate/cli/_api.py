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

from sluicegate._trust import ca_context, untrusted_reason
from sluicegate.errors import SluicegateError, TransientError, error_from_response

__all__ = ["Api", "api_options"]

DEFAULT_URL = "http://127.0.0.1:7070"


_TOKEN_FILE = "sluice_token_file"
_CA_FILE = "sluice_ca_file"


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
        ca_file = (ctx.meta.get(_CA_FILE) if ctx else None) or os.environ.get("SLUICE_CA_FILE")
        verify = ca_context(ca_file)
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
            raise TransientError(
                f"cannot reach the server at {self.url} ({exc!r}); "
                "is `sluice server` running? (--url / SLUICE_URL)"
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


def _remember_ca_file(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[_CA_FILE] = value


def api_options(f: Any) -> Any:
    f = click.option(
        "--ca-file",
        metavar="PATH",
        expose_value=False,
        callback=_remember_ca_file,
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
