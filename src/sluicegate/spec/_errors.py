"""Translate pydantic's validation errors into Sluicegate problems naming field paths."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from sluicegate.errors import Problem, SpecError

__all__ = ["dotted_path", "spec_error_from"]


def dotted_path(loc: Sequence[int | str]) -> str:
    """``('listeners', 0, 'port')`` -> ``listeners[0].port``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def spec_error_from(exc: ValidationError, source: str | None = None) -> SpecError:
    problems = []
    for err in exc.errors(include_url=False):
        # Drop pydantic's internal union/validator labels from the location.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(Problem(dotted_path(loc), message))
    return SpecError(problems, source=source)
