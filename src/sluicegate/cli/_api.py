"""The CLI's HTTP client: the server from --url/SLUICE_URL, the token from --token/SLUICE_TOKEN."""

from __future__ import annotations

from typing import Any

import click
import httpx

from sluicegate.errors import TransientError, error_from_response

__all__ = ["Api", "api_options"]

DEFAULT_URL = "http://127.0.0.1:7070"


class Api:
    def __init__(self, url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

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


def api_options(f: Any) -> Any:
    f = click.option("--token", envvar="SLUICE_TOKEN", help="API token (or SLUICE_TOKEN).")(f)
    f = click.option(
        "--url",
        envvar="SLUICE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Server URL (or SLUICE_URL).",
    )(f)
    return f
