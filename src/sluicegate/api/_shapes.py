"""Shapes every route shares: the one error body, the error answers a route declares in the
OpenAPI schema, and integers bounded to 64 bits (larger ones are 422, never a 500 from the
database)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, TypeAdapter
from pydantic_core import core_schema

__all__ = [
    "COMMON_ERRORS",
    "INT64_MAX",
    "ErrorBody",
    "Int64",
    "NonNegative",
    "Positive",
    "ProblemOut",
    "described_as",
    "errors",
    "json_errors",
    "non_negative_query",
]

INT64_MAX = 2**63 - 1

#: An integer the store can hold (SQLite and PostgreSQL BIGINT are signed 64-bit).
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
NonNegative = Annotated[int, Field(ge=0, le=INT64_MAX)]
Positive = Annotated[int, Field(ge=1, le=INT64_MAX)]


def non_negative_query(description: str | None = None) -> Any:
    """A query parameter holding a 64-bit integer >= 0."""
    return Query(ge=0, le=INT64_MAX, description=description)


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
