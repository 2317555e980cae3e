"""What changed between two flag-set versions, per flag and per segment.

Works on normal forms (:meth:`sluicegate.flags.FlagSet.document`), so a default written
out in one version and left implicit in the other is no change. Used by
``sluice flags diff`` and by the audit events of a new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EntryChange", "FieldChange", "FlagSetDiff", "IdsChange", "diff_flag_sets"]


@dataclass(frozen=True)
class FieldChange:
    """A field added, removed or changed; ``path`` is relative to the flag or segment
    (``rules[1].when``, ``variants.blue``)."""

    path: str
    change: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.change == "added":
            return f"{self.path}: added {self.new!r}"
        if self.change == "removed":
            return f"{self.path}: removed (was {self.old!r})"
        return f"{self.path}: {self.old!r} -> {self.new!r}"


@dataclass(frozen=True)
class IdsChange:
    """A segment's id list: who joined and who left (lists may be 100k long, so the
    change is given as members, not as old and new lists)."""

    path: str
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path}: +{len(self.added)} -{len(self.removed)} ids"


@dataclass(frozen=True)
class EntryChange:
    """One flag or segment that was added, removed or changed."""

    kind: Literal["flag", "segment"]
    key: str
    change: Literal["added", "removed", "changed"]
    fields: tuple[FieldChange | IdsChange, ...] = ()

    def __str__(self) -> str:
        head = f"{self.kind} {self.key}: {self.change}"
        return "\n".join([head, *(f"  {f}" for f in self.fields)])


@dataclass(frozen=True)
class FlagSetDiff:
    """Segments first, then flags, each in document order; ``description`` is the set's own
    description when it changed."""

    changes: tuple[EntryChange, ...]
    description: FieldChange | None = None

    def __bool__(self) -> bool:
        return bool(self.changes) or self.description is not None

    def __str__(self) -> str:
        lines = [f"flag set {self.description}"] if self.description else []
        lines.extend(str(c) for c in self.changes)
        return "\n".join(lines) or "no changes"

    def as_dict(self) -> list[dict[str, Any]]:
        """JSON data for events and ``--json`` output."""
        out = []
        for c in self.changes:
            fields = []
            for f in c.fields:
                if isinstance(f, IdsChange):
                    fields.append(
                        {
                            "path": f.path,
                            "change": "ids",
                            "added": list(f.added),
                            "removed": list(f.removed),
                        }
                    )
                else:
                    fields.append({"path": f.path, "change": f.change, "old": f.old, "new": f.new})
            out.append({"kind": c.kind, "key": c.key, "change": c.change, "fields": fields})
        return out


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1`` and ``true`` differ (Python says ``1 == True``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _fields(old: Any, new: Any, path: str, out: list[FieldChange | IdsChange]) -> None:
    if _same(old, new):
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in old:
            if key not in new:
                out.append(FieldChange(_join(path, key), "removed", old[key], None))
            else:
                _fields(old[key], new[key], _join(path, key), out)
        for key in new:
            if key not in old:
                out.append(FieldChange(_join(path, key), "added", None, new[key]))
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _fields(a, b, _join(path, i), out)
        return
    out.append(FieldChange(path, "changed", old, new))


def _entries(
    kind: Literal["flag", "segment"], old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[EntryChange]:
    out: list[EntryChange] = []
    for key, old_entry in old.items():
        if key not in new:
            out.append(EntryChange(kind, key, "removed"))
            continue
        before, after = old_entry, new[key]
        fields: list[FieldChange | IdsChange] = []
        if kind == "segment" and (before.get("ids") is not None or after.get("ids") is not None):
            a, b = set(before.get("ids") or ()), set(after.get("ids") or ())
            if a != b:
                fields.append(IdsChange("ids", tuple(sorted(b - a)), tuple(sorted(a - b))))
            before = {k: v for k, v in before.items() if k != "ids"}
            after = {k: v for k, v in after.items() if k != "ids"}
        _fields(before, after, "", fields)
        if fields:
            out.append(EntryChange(kind, key, "changed", tuple(fields)))
    out.extend(EntryChange(kind, key, "added") for key in new if key not in old)
    return out


def diff_flag_sets(old: Mapping[str, Any], new: Mapping[str, Any]) -> FlagSetDiff:
    """Flags and segments added, removed and changed (with their changed fields) from the
    normal form ``old`` to ``new``. Lists whose length changed (rules, a split) are
    reported whole; lists of equal length element by element."""
    changes = _entries("segment", old.get("segments", {}), new.get("segments", {}))
    changes += _entries("flag", old.get("flags", {}), new.get("flags", {}))
    description = None
    if old.get("description", "") != new.get("description", ""):
        description = FieldChange(
            "description", "changed", old.get("description", ""), new.get("description", "")
        )
    return FlagSetDiff(tuple(changes), description)
