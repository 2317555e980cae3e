"""``/openapi.json``: FastAPI's schema, plus what it cannot see: the bearer tokens every
route behind a token takes, and the flag stream (a plain route)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sluicegate.api._flag_sync_routes import STREAM_OPERATION, STREAM_PATH

__all__ = ["install_openapi"]

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token from `sluice token create` (admin ⊇ deployer ⊇ reader), or an "
    "agent key for one environment's flag snapshots; `sluice server` prints the first admin "
    "token.",
}


def _with_extras(schema: dict[str, Any]) -> dict[str, Any]:
    schema["paths"][STREAM_PATH] = STREAM_OPERATION
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
    for item in schema["paths"].values():
        for operation in item.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"bearer": []}]
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed schema (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_extras(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
