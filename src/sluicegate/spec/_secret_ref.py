"""Secret env values in a spec: a reference to where the value is, never the value."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from sluicegate.errors import Problem
from sluicegate.spec._errors import LocatedError
from sluicegate.spec._model import SpecModel, check
from sluicegate.spec._placeholders import unknown_placeholders

__all__ = ["SecretRef", "check_env"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretRef(SpecModel):
    """An env value that is a secret: read when a replica starts, never stored, shown or
    logged. ``secret: NAME`` takes the server's environment variable NAME; ``file: PATH``
    the contents of a file (its trailing newline dropped)."""

    secret: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: str | None = None

    @check
    def _one(self) -> list[Problem]:
        if (self.secret is None) == (self.file is None):
            return [Problem("", "give exactly one of secret: NAME or file: PATH")]
        return []


def check_env(
    env: dict[str, str | SecretRef], placeholders: frozenset[str]
) -> dict[str, str | SecretRef]:
    """A replica's ``env``: names that are variable names, plain values whose placeholders
    are among ``placeholders``; every problem at its key, all at once."""
    problems: list[Problem] = []
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            problems.append(Problem(key, f"{key!r} is not an environment variable name"))
        elif isinstance(value, str) and (msg := unknown_placeholders(value, placeholders)):
            problems.append(Problem(key, msg))
    if problems:
        raise LocatedError(problems)
    return env
