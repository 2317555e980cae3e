"""The environment a replica or a hook gets: explicit, never the server's whole environment.

The server's environment holds its own secrets (database URLs, tokens, cloud credentials);
a replica gets only what its spec says (``env``, with placeholders), plus a short allowlist
of harmless variables programs expect (:data:`ALLOWED`), plus what the operator passes on
purpose with ``SLUICE_PASS_ENV`` (names or ``PREFIX_*`` patterns, comma or space separated).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["ALLOWED", "PASS_ENV_VAR", "child_env", "passed_through"]

ALLOWED: tuple[str, ...] = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR",
)  # fmt: skip
"""Variables of the server's environment every replica and hook inherits."""

PASS_ENV_VAR = "SLUICE_PASS_ENV"


def passed_through(source: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The allowlist plus the names/patterns the operator listed in ``SLUICE_PASS_ENV``."""
    env = os.environ if source is None else source
    extra = [p for p in re.split(r"[,\s]+", env.get(PASS_ENV_VAR, "")) if p]
    return (*ALLOWED, *extra)


def child_env(
    own: Mapping[str, str],
    patterns: Iterable[str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allowed variables of ``source`` (the server's environment), then ``own`` on top."""
    env = os.environ if source is None else source
    allowed = tuple(passed_through(env) if patterns is None else patterns)
    inherited = {k: v for k, v in env.items() if any(fnmatch.fnmatchcase(k, p) for p in allowed)}
    return {**inherited, **own}
