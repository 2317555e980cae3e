"""The base of every spec model: all problems in one round, unknown keys name the valid ones.

Pydantic runs a model's ``after`` validators only once every field validated, so a document
with a bad port never heard that two of its alarms share a name until the port was fixed.
Here a check across fields is a method marked :func:`check` returning problems. When the
fields validate it runs on the model; when some do not, it runs on a partial model holding
what did validate (recursively: a list of alarms with one bad alarm still has the others and
the bad one's good fields) and is skipped only if it reads a part that is missing. Its
problems are reported together with the fields' own.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic import ValidatorFunctionWrapHandler as Handler
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from sluicegate.errors import Problem
from sluicegate.spec._errors import LocatedError

__all__ = ["SpecModel", "check", "unknown_key_message"]

C = TypeVar("C", bound=Callable[[Any], list[Problem]])

_CHECK_MARK = "__spec_check__"
_BUILTIN_ERRORS: frozenset[str] = frozenset(get_args(ErrorType))


def check(method: C) -> C:
    """Mark a method ``(self) -> list[Problem]`` as a check across fields; its problems'
    paths are relative to the model (``""`` for the model itself)."""
    setattr(method, _CHECK_MARK, True)
    return method


def unknown_key_message(key: str, valid: Sequence[str]) -> str:
    """``unknown key; did you mean 'b'? (valid: a, b)`` — the suggestion by difflib."""
    close = _resembles(key, valid)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown key{hint} (valid: {', '.join(valid)})"


def _resembles(key: str, valid: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(key, valid, n=1)
    return close[0] if close else None


class SpecModel(BaseModel):
    """A frozen model refusing unknown keys, reporting every problem it can find at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Fill in defaults that depend on other keys, before validation (override)."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Handler) -> Any:
        # An instance (also what an assignment in _partial passes) or a non-mapping.
        if not isinstance(data, dict):
            return handler(data)
        data = cls._prepare(data)
        try:
            model = handler(data)
        except ValidationError as exc:
            raise _all_problems(cls, data, exc) from None
        problems = [p for run in _checks_of(cls) for p in run(model)]
        if problems:
            raise LocatedError(problems)
        return model


@functools.cache
def _checks_of(cls: type[SpecModel]) -> tuple[Callable[[Any], list[Problem]], ...]:
    """The class's checks in the order they are defined (base classes first)."""
    found: dict[str, Callable[[Any], list[Problem]]] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if getattr(value, _CHECK_MARK, False):
                found[attr] = value
    return tuple(found.values())


def _all_problems(cls: type[SpecModel], data: dict[str, Any], exc: ValidationError) -> Exception:
    """The fields' errors, unknown keys with the valid ones, and the checks that could run."""
    valid = [field.alias or name for name, field in cls.model_fields.items()]
    details: list[InitErrorDetails] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            message = unknown_key_message(str(err["loc"][0]), valid)
            details.append(_custom("unknown_key", message, err["loc"], err["input"]))
        else:
            details.append(_again(err))
    partial = _partial(cls, data)
    problems: list[Problem] = []
    for run in _checks_of(cls):
        try:
            problems += run(partial)
        except AttributeError:
            continue  # it reads a part that did not validate
    if problems:
        details.append(
            InitErrorDetails(
                type="value_error", loc=(), input=data, ctx={"error": LocatedError(problems)}
            )
        )
    return ValidationError.from_exception_data(cls.__name__, details)


def _custom(kind: str, message: str, loc: tuple[int | str, ...], value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _again(err: Any) -> InitErrorDetails:
    """One of pydantic's errors as it can be raised again (custom types keep their text)."""
    if err["type"] not in _BUILTIN_ERRORS:
        return _custom(err["type"], err["msg"], err["loc"], err["input"])
    out = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
    if "ctx" in err:
        out["ctx"] = err["ctx"]
    return out


class _Missing:
    """Stands for a list or dict item that did not validate: reading it skips the check."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


_MISSING = _Missing()


def _partial(cls: type[SpecModel], data: dict[str, Any]) -> SpecModel:
    """An unvalidated instance holding each field that validates, a partial model for a
    nested model that does not, and no attribute at all for any other failed field."""
    partial = cls.model_construct()
    written = [field.alias or name for name, field in cls.model_fields.items()]
    known = {*cls.model_fields, *written}
    # A misspelt key probably meant a field: that field's value is unknown, not its default.
    meant = {_resembles(str(key), written) for key in data if key not in known}
    for name, field in cls.model_fields.items():
        key = field.alias if field.alias and field.alias in data else name
        if (field.alias or name) in meant:
            partial.__dict__.pop(name, None)
            continue
        if key not in data:
            continue  # its default (model_construct set it) or, if required, absent
        try:
            cls.__pydantic_validator__.validate_assignment(partial, name, data[key])
        except ValidationError as exc:
            below = [(e["loc"][1:], e) for e in exc.errors()]
            value = _salvage(field.annotation, data[key], below)
            if value is _MISSING:
                partial.__dict__.pop(name, None)
            else:
                partial.__dict__[name] = value
    return partial


def _salvage(annotation: Any, raw: Any, errors: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """What of ``raw`` (which failed as ``annotation`` with ``errors``, by location relative
    to it) is worth keeping: a partial spec model, a list or dict of them, else _MISSING."""
    if any(not loc and not _only_below(err) for loc, err in errors):
        return _MISSING  # wrong as a whole: a list too short, not a mapping, ...
    kind = _bare(annotation)
    if _is_spec_model(kind):
        return _partial(kind, kind._prepare(raw)) if isinstance(raw, dict) else _MISSING
    origin, args = get_origin(kind), get_args(kind)
    if origin is list and isinstance(raw, list) and _is_spec_model(_bare(args[0])):
        return [_item(_bare(args[0]), item) for item in raw]
    if origin is dict and isinstance(raw, dict) and _is_spec_model(_bare(args[1])):
        return {key: _item(_bare(args[1]), item) for key, item in raw.items()}
    return _MISSING


def _item(kind: type[SpecModel], raw: Any) -> Any:
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        return _salvage(kind, raw, [(tuple(e["loc"]), e) for e in exc.errors()])


def _only_below(err: Any) -> bool:
    """Whether an error at a model's own location is its checks' problems, each at a field."""
    cause = err.get("ctx", {}).get("error")
    return isinstance(cause, LocatedError) and all(p.path for p in cause.problems)


def _is_spec_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, SpecModel)


def _bare(annotation: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``; other unions stay as they are."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        others = [a for a in get_args(annotation) if a is not type(None)]
        if len(others) == 1:
            return _bare(others[0])
    return annotation
