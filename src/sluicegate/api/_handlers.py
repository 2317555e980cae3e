"""Every error answer in one shape, ``{"error": ..., "problems": [{"path", "message"}]}``:
422 invalid input (with field paths), 404 unknown, 409 conflict, 401/403 token, 503
temporarily unable. An error of no known kind is a bug: 500 with its message."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluicegate.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    SluicegateError,
    SpecError,
    TransientError,
)
from sluicegate.monitor.series import SeriesLimitError
from sluicegate.spec._errors import LocatedError, dotted_path

__all__ = ["install_error_handlers", "status_of"]

_STATUS: tuple[tuple[type[SluicegateError], int], ...] = (
    (SpecError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (SeriesLimitError, 409),  # the series store is full: a conflict with its current state
    (AuthError, 401),
    (TransientError, 503),
)


def status_of(exc: SluicegateError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 500)


def _problems(errors: Any) -> list[dict[str, str]]:
    """FastAPI's validation errors as problems; a model validator's located problems are
    reported at their own paths (as :func:`sluicegate.spec._errors.spec_error_from` does)."""
    out = []
    for e in errors:
        loc = [
            p
            for p in e["loc"]
            if p != "body" and not (isinstance(p, str) and p.startswith("function-"))
        ]
        base = dotted_path(loc)
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedError):
            for p in cause.problems:
                sep = "" if not base or not p.path or p.path.startswith("[") else "."
                out.append({"path": base + sep + p.path, "message": p.message})
            continue
        message = str(e["msg"]).removeprefix("Value error, ")
        out.append({"path": base, "message": message})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SluicegateError)
    async def _sluicegate_error(request: Request, exc: SluicegateError) -> JSONResponse:
        if isinstance(exc, SpecError):
            problems = [{"path": p.path, "message": p.message} for p in exc.problems]
            return JSONResponse({"error": "invalid input", "problems": problems}, 422)
        return JSONResponse({"error": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8, say)
            problem = {"path": "", "message": f"the body cannot be read as JSON ({exc.detail})"}
            return JSONResponse({"error": "invalid input", "problems": [problem]}, 422)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid input", "problems": _problems(exc.errors())}, status_code=422
        )
