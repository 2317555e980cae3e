"""The flag sync protocol's payload: a snapshot of what one environment serves, and the
compiled view that evaluates it (including a flag-set rollout in progress).

A snapshot is plain JSON (``docs/agent.md``)::

    {"env": "prod", "version": 7, "etag": "\\"7-rfr-7a009f3c482d-40\\"", "document": {...},
     "rollout": null | {"id": "fr-7a009f3c482d", "from_version": 6, "to_version": 7, "percent": 40,
                        "from_document": {...}}}

``document`` is the newest version (N+1 during a rollout); a rollout serves it to the users
whose rollout bucket is below ``percent`` and ``from_document`` (N) to everybody else.
Parsing validates the shape *and* compiles both documents, so a snapshot that parses is one
that can be served; agents and SDKs never replace a good snapshot with one that does not.

Imports only the standard library and the evaluator (apps import this through the SDK).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.errors import Problem, SluicegateError, SpecError
from sluicegate.flags._compile import compile_flag_set
from sluicegate.flags._resolve import RolloutRule
from sluicegate.flags.bucketing import SEPARATOR
from sluicegate.flags.evaluator import CompiledFlagSet, FlagType, Resolution

__all__ = [
    "Rollout",
    "ServingSet",
    "Snapshot",
    "compile_snapshot",
    "parse_snapshot",
    "snapshot_etag",
]


@dataclass(frozen=True, slots=True)
class Rollout:
    """A flag-set rollout from ``from_version`` to ``to_version`` at ``percent`` (0..100)."""

    id: str
    from_version: int
    to_version: int
    percent: float
    from_document: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "percent": self.percent,
            "from_document": self.from_document,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What environment ``env`` serves now; ``etag`` changes whenever any of it changes."""

    env: str
    version: int
    etag: str
    document: Mapping[str, Any]
    rollout: Rollout | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "version": self.version,
            "etag": self.etag,
            "document": self.document,
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
        }

    def to_json(self) -> str:
        """One line of compact JSON (what an SSE ``data:`` line and the cache file hold)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


def snapshot_etag(version: int, rollout: Rollout | None = None) -> str:
    """The strong ETag (quotes included) of a version, with a rollout's id and percent."""
    if rollout is None:
        return f'"{version}"'
    return f'"{version}-r{rollout.id}-{rollout.percent:g}"'


def _int(data: Mapping[str, Any], name: str, path: str, problems: list[Problem]) -> int:
    value = data.get(name)
    if type(value) is not int or value < 0:
        problems.append(Problem(f"{path}{name}", f"must be a non-negative integer, not {value!r}"))
        return 0
    return value


def _mapping(
    data: Mapping[str, Any], name: str, path: str, problems: list[Problem]
) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        problems.append(Problem(f"{path}{name}", "must be an object (a flag-set document)"))
        return {}
    return value


def parse_snapshot(payload: str | bytes | Mapping[str, Any]) -> tuple[Snapshot, ServingSet]:
    """Parse, validate and compile a snapshot; raise SpecError naming the field otherwise.

    Returns the snapshot and its compiled :class:`ServingSet`: compiling is the validation.
    """
    if isinstance(payload, str | bytes):
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError([Problem("", f"not JSON: {exc}")]) from exc
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise SpecError([Problem("", "a snapshot is a JSON object")])
    problems: list[Problem] = []
    env = data.get("env")
    if not isinstance(env, str) or not env:
        problems.append(Problem("env", f"must be a non-empty string, not {env!r}"))
    version = _int(data, "version", "", problems)
    etag = data.get("etag")
    if not isinstance(etag, str) or not etag:
        problems.append(Problem("etag", f"must be a non-empty string, not {etag!r}"))
    document = _mapping(data, "document", "", problems)
    rollout: Rollout | None = None
    raw = data.get("rollout")
    if raw is not None:
        if not isinstance(raw, Mapping):
            problems.append(Problem("rollout", "must be null or an object"))
        else:
            rid = raw.get("id")
            if type(rid) is int:
                rid = str(rid)
            if not isinstance(rid, str) or not rid or SEPARATOR in rid:
                problems.append(
                    Problem("rollout.id", f"must be a non-empty string without ':', not {rid!r}")
                )
            percent = raw.get("percent")
            if (
                isinstance(percent, bool)
                or not isinstance(percent, int | float)
                or not (0 <= percent <= 100)
            ):
                problems.append(
                    Problem("rollout.percent", f"must be a number from 0 to 100, not {percent!r}")
                )
                percent = 0
            from_version = _int(raw, "from_version", "rollout.", problems)
            to_version = _int(raw, "to_version", "rollout.", problems)
            if to_version != version:
                problems.append(
                    Problem(
                        "rollout.to_version", f"must equal version ({version}), not {to_version}"
                    )
                )
            from_document = _mapping(raw, "from_document", "rollout.", problems)
            rollout = Rollout(str(rid), from_version, to_version, float(percent), from_document)
    if problems:
        raise SpecError(problems)
    snapshot = Snapshot(str(env), version, str(etag), document, rollout)
    return snapshot, compile_snapshot(snapshot)


def compile_snapshot(snapshot: Snapshot) -> ServingSet:
    """Compile the snapshot's document(s); raise SpecError (paths prefixed) when invalid."""
    current = _compile(snapshot.document, snapshot.version, "document")
    previous = None
    if snapshot.rollout is not None:
        previous = _compile(
            snapshot.rollout.from_document, snapshot.rollout.from_version, "rollout.from_document"
        )
    return ServingSet(snapshot, current, previous)


def _compile(document: Mapping[str, Any], version: int, path: str) -> CompiledFlagSet:
    try:
        return compile_flag_set(dict(document), version=version)
    except SpecError as exc:
        raise SpecError(
            [Problem(f"{path}.{p.path}" if p.path else path, p.message) for p in exc.problems]
        ) from exc
    except SluicegateError:
        raise
    except Exception as exc:  # a document the compiler did not expect: still just invalid
        raise SpecError([Problem(path, f"cannot be compiled: {exc}")]) from exc


class ServingSet:
    """A compiled snapshot: evaluates with version N+1 for users a rollout has reached and
    with version N for the others; without a rollout, with the one version. Immutable."""

    __slots__ = ("_rule", "current", "percent", "previous", "rollout_id", "snapshot")

    def __init__(
        self, snapshot: Snapshot, current: CompiledFlagSet, previous: CompiledFlagSet | None
    ) -> None:
        self.snapshot = snapshot
        self.current = current
        self.previous = previous
        rollout = snapshot.rollout
        self.rollout_id = rollout.id if rollout is not None else ""
        self.percent = rollout.percent if rollout is not None else 100.0
        self._rule = RolloutRule(self.rollout_id, self.percent)

    @property
    def version(self) -> int:
        return self.snapshot.version

    @property
    def etag(self) -> str:
        return self.snapshot.etag

    def flags_for(self, context: Mapping[str, Any] | None) -> CompiledFlagSet:
        """The compiled version that serves ``context``: :class:`RolloutRule`, the rule the
        flag store uses (at 0 % everyone gets N, at 100 % everyone N+1; in between N+1 when
        the targeting key's rollout bucket is below the percentage, N without a usable key)."""
        previous = self.previous
        if previous is None or self._rule.gets_new(context):
            return self.current
        return previous

    def evaluate(
        self,
        key: str,
        context: Mapping[str, Any] | None = None,
        default: Any = None,
        expected_type: FlagType | str | None = None,
    ) -> Resolution:
        """:meth:`CompiledFlagSet.evaluate` on the version serving ``context``; never raises."""
        return self.flags_for(context).evaluate(key, context, default, expected_type)

    def keys(self) -> list[str]:
        return self.current.keys()
