"""Shapes every route shares: the one error body, the error answers a route declares in the
OpenAPI schema, the 64-bit bound of integers (beyond it: 422, never a 500 from the
database), and bodies described by a type the route validates itself."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, TypeAdapter
from pydantic_core import core_schema

__all__ = [
    "COMMON_ERRORS",
    "INT64_MAX",
    "ErrorBody",
    "ProblemOut",
    "described_as",
    "errors",
    "json_errors",
]

#: The largest integer the store holds (SQLite's and PostgreSQL's BIGINT are signed 64-bit).
INT64_MAX = 2**63 - 1


class ProblemOut(BaseModel):
    """One thing wrong with the input: where (a dotted path, e.g. ``listener.port``) and what."""

    path: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, and for invalid input (422) each problem."""

    model_config = ConfigDict(json_schema_extra={"example": {"error": "invalid input"}})

    error: str = Field(description="what went wrong, for a person")
    problems: list[ProblemOut] = Field(
        default_factory=list, description="422 only: every problem with the input, by path"
    )


_WHY = {
    401: "Missing or unknown bearer token.",
    403: "The token's role may not make this call.",
    404: "A named thing does not exist.",
    409: "The call contradicts the current state (an active deployment, a version moved on...).",
    413: "The request body is larger than the server takes (sluice server --max-body).",
    422: "Invalid input: every problem, with the path of its field.",
    503: "Temporarily unable: the server paused changes (state dir or database gone), or a "
    "part it needs (the alarm loop, the router) is not running or not answering.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the given error statuses, each with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}


def json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """:func:`errors` spelled out as JSON, for routes whose own answer is not JSON (FastAPI
    would describe their errors in the route's media type)."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        code: {"description": _WHY[code], "content": {"application/json": {"schema": ref}}}
        for code in codes
    }


#: What every route behind a token may answer besides its own errors.
COMMON_ERRORS = errors(401, 403, 413, 422, 503)


def described_as(tp: Any) -> GetPydanticSchema:
    """For input the route validates itself (so problems keep the paths the spec layer
    gives them): accepted as any JSON here, described in the schema as type ``tp``."""
    return GetPydanticSchema(
        lambda _type, _handler: core_schema.any_schema(),
        lambda _schema, handler: handler(TypeAdapter(tp).core_schema),
    )
