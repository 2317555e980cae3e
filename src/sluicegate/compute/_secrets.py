"""Secret env values (``{secret: NAME}``, ``{file: PATH}``): resolved when a replica starts,
from the server's environment or a file, never stored in the spec (which keeps only the
reference), never shown by the API, and redacted from what hooks and replicas say in events."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sluicegate.errors import Problem
from sluicegate.spec.service import SecretRef

__all__ = ["redact", "resolve_env"]

_HIDDEN = "[secret]"


def resolve_env(
    env: Mapping[str, str | SecretRef], where: str, source: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str], list[Problem]]:
    """(plain values, secret values, problems): a secret that cannot be read is a problem
    naming the key (``where.KEY``) and what is missing — never its value."""
    environ = os.environ if source is None else source
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in env.items():
        if isinstance(value, str):
            plain[key] = value
        elif value.secret is not None:
            found = environ.get(value.secret)
            if found is None:
                problems.append(Problem(f"{where}.{key}", (
                    f"the server's environment has no {value.secret} (start sluice server "
                    f"with it set)")))  # fmt: skip
            else:
                secret[key] = found
        else:
            assert value.file is not None
            try:
                secret[key] = Path(value.file).read_text(encoding="utf-8").removesuffix("\n")
            except OSError as exc:
                problems.append(Problem(f"{where}.{key}", (
                    f"cannot read {value.file}: {exc.strerror or exc}")))  # fmt: skip
    return plain, secret, problems


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (of 4 characters or more) replaced by a marker."""
    for value in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, _HIDDEN)
    return text
