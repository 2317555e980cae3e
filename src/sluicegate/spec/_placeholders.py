"""``{name}`` placeholders in user text (commands, env values, alarm dimensions; pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["expand_placeholders", "placeholders_in", "unknown_placeholders"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_in(text: str) -> list[str]:
    """The ``{name}`` placeholders in ``text``, in order (braces around non-names ignored)."""
    return _PLACEHOLDER.findall(text)


def expand_placeholders(text: str, values: Mapping[str, object]) -> str:
    """Replace each ``{name}`` whose name is in ``values``; other braces stay as written."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(values[name]) if name in values else m.group(0)

    return _PLACEHOLDER.sub(one, text)


def unknown_placeholders(text: str, allowed: frozenset[str]) -> str | None:
    """A message naming the first placeholder of ``text`` not in ``allowed``, else None."""
    bad = [p for p in placeholders_in(text) if p not in allowed]
    if not bad:
        return None
    known = ", ".join(f"{{{p}}}" for p in sorted(allowed))
    return f"unknown placeholder {{{bad[0]}}} (known: {known})"
