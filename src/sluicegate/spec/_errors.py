"""Translate pydantic's validation errors into Sluicegate problems naming field paths."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from sluicegate.errors import Problem, SpecError

__all__ = ["LocatedError", "dotted_path", "join_path", "spec_error_from"]


class LocatedError(ValueError):
    """Raised by a model validator that found problems below itself, each with a path.

    Paths are relative to the model that raises (``forward[1].target_group``);
    :func:`spec_error_from` prefixes them with where that model sits in the document.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def dotted_path(loc: Sequence[int | str]) -> str:
    """``('listeners', 0, 'port')`` -> ``listeners[0].port``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join_path(base: str, rel: str) -> str:
    """``join_path("alarms[0]", "name")`` -> ``alarms[0].name``; ``[1]`` joins without a dot."""
    if not base or not rel:
        return base or rel
    return base + rel if rel.startswith("[") else f"{base}.{rel}"


def spec_error_from(exc: ValidationError, source: str | None = None) -> SpecError:
    """Every error of ``exc`` as a problem at its dotted path (a LocatedError's, below it)."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        # Drop pydantic's internal union/validator labels from the location.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        base = dotted_path(loc)
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, LocatedError):
            problems.extend(Problem(join_path(base, p.path), p.message) for p in cause.problems)
            continue
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(Problem(base, message))
    return SpecError(problems, source=source)
