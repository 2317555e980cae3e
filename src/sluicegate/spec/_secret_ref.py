"""Secret env values in a spec: a reference to where the value is, never the value."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sluicegate.errors import Problem
from sluicegate.spec._model import SpecModel, check

__all__ = ["SecretRef"]


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
