"""The flag service's verbs: environments, applying and reverting versions, evaluating.

``apply`` validates a flag set (every problem by path; nothing saved on error), compares it
with the environment's current version, and saves version N+1 — published at once, or
waiting for a rollout created in the same transaction — together with a ``flags.version``
audit event carrying the actor and a diff summary. An unchanged document saves nothing.
Compiled versions are cached by ``(env, version)``: versions never change.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sluicegate.clock import Clock
from sluicegate.errors import ConflictError, NotFoundError, Problem, SpecError
from sluicegate.flags import (
    CompiledFlagSet,
    FlagSetDiff,
    RolloutView,
    compile_flag_set,
    diff_flag_sets,
    gets_new_version,
    validate_flag_set,
)
from sluicegate.flags.diff import IdsChange
from sluicegate.flags.rollout import RolloutState, start
from sluicegate.flagservice.rollouts import AlarmLookup, RolloutEngine, subject_of
from sluicegate.spec._errors import spec_error_from
from sluicegate.spec.flag_rollout import RolloutSpec
from sluicegate.store import FlagEnvironment, FlagRollout, FlagSetVersion, Store

__all__ = ["ENV_NAME_PATTERN", "Applied", "FlagService", "diff_summary", "parse_rollout"]

ENV_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_RESERVED = {"envs", "schema"}  # path segments of the API beside /v1/flags/{env}
_CACHE_SIZE = 32
_IDS_SHOWN = 20


@dataclass(frozen=True)
class Applied:
    """The outcome of an apply or revert. ``version`` is the saved version, or the current
    one when the document was unchanged (``changed`` False; nothing saved)."""

    env: str
    version: FlagSetVersion
    previous: int | None
    diff: FlagSetDiff
    changed: bool
    rollout: FlagRollout | None = None
    note: str | None = None


class FlagService:
    def __init__(self, store: Store, clock: Clock, alarms: AlarmLookup | None = None) -> None:
        self.store = store
        self.clock = clock
        self.rollouts = RolloutEngine(store, clock, alarms)
        self._compiled: OrderedDict[tuple[str, int], CompiledFlagSet] = OrderedDict()

    # -- environments ----------------------------------------------------------------------

    def create_environment(self, name: str, description: str, actor: str) -> FlagEnvironment:
        if not re.match(ENV_NAME_PATTERN, name) or name in _RESERVED:
            raise SpecError(
                [
                    Problem(
                        "name",
                        f"{name!r} is not an environment name: 1 to 64 "
                        "letters, digits, '_', '.' or '-', starting with "
                        "a letter or digit (not 'envs' or 'schema')",
                    )
                ]
            )
        with self.store.transaction() as tx:
            env = tx.flags.create_environment(name, description)
            tx.events.append(
                "flags.env.created",
                subject_of(name),
                f"flag environment {name} created",
                actor=actor,
            )
        return env

    def delete_environment(self, name: str, actor: str, *, keep: str | None = None) -> None:
        """Delete ``name`` with its versions and rollouts (event ``flags.env.deleted``).

        Refused (:class:`ConflictError`) while it is in use: it is ``keep`` (the router's
        flag environment), a rollout is in progress, or agent tokens read it."""
        if keep and name == keep:
            self.store.flags.environment(name)  # an unknown one is 404 all the same
            raise ConflictError(
                f"flag environment {name!r} is the one the router's flag rules evaluate "
                "(sluice server --router-flags-env); it cannot be deleted while the server "
                "uses it"
            )
        with self.store.transaction() as tx:
            versions = tx.flags.delete_environment(name)
            tx.events.append(
                "flags.env.deleted",
                subject_of(name),
                f"flag environment {name} deleted with its {versions} "
                f"version{'s' if versions != 1 else ''}",
                actor=actor,
                data={"env": name, "versions": versions},
            )
        for key in [k for k in self._compiled if k[0] == name]:  # a new env may reuse the name
            del self._compiled[key]

    # -- changes ----------------------------------------------------------------------------

    async def apply(
        self,
        env: str,
        data: Any,
        *,
        actor: str,
        message: str = "",
        expected_version: int | None = None,
        rollout: RolloutSpec | Mapping[str, Any] | None = None,
        source: str | None = None,
        revert_of: int | None = None,
    ) -> Applied:
        """Validate and save ``data`` as the environment's next version (see the module).

        ``rollout`` as data is validated too; the problems of both are reported together,
        the rollout's under ``rollout.``."""
        problems: list[Problem] = []
        try:
            document = validate_flag_set(data, source).document()
        except SpecError as exc:
            problems += exc.problems
        spec: RolloutSpec | None = None
        try:
            spec = parse_rollout(rollout)
        except SpecError as exc:
            problems += exc.problems
        if problems:
            raise SpecError(problems, source)
        compile_flag_set(document)  # a validated set compiles; prove it before saving
        if spec is not None:
            await self.rollouts.check_alarms(spec.alarms)
        with self.store.transaction() as tx:
            locked = tx.flags.lock(env, expected_version=expected_version)
            previous = locked.current_version
            current = tx.flags.version(env) if previous is not None else None
            diff = diff_flag_sets(current.document if current else {}, document)
            if current is not None and not diff:
                return Applied(
                    env,
                    current,
                    previous,
                    diff,
                    changed=False,
                    note=f"no changes: {env} stays at version {previous}",
                )
            gradual = spec is not None and current is not None
            saved = tx.flags.append_version(
                env, document, actor=actor, message=message, publish=not gradual
            )
            started = None
            if gradual:
                assert spec is not None and previous is not None
                state = start(self.clock.now())
                started = tx.flag_rollouts.create(
                    env,
                    from_version=previous,
                    to_version=saved.version,
                    strategy=spec.as_json(),
                    state=state.to_json(),
                    phase=state.phase.value,
                )
            tx.events.append(
                "flags.version",
                subject_of(env),
                _version_message(saved, previous, diff, started, revert_of),
                actor=actor,
                data={
                    "env": env,
                    "version": saved.version,
                    "from_version": previous,
                    "message": message,
                    "revert_of": revert_of,
                    "rollout": started.id if started else None,
                    "diff": diff_summary(diff),
                },
            )
            if started is not None and spec is not None:
                alarms = f", guarded by {', '.join(spec.alarms)}" if spec.alarms else ""
                tx.events.append(
                    "flags.rollout.started",
                    subject_of(env),
                    f"{env} v{previous} -> v{saved.version}: rollout {started.id} started with "
                    f"{spec.strategy_name}{alarms}",
                    actor=actor,
                    data={
                        "env": env,
                        "rollout": started.id,
                        "from_version": previous,
                        "to_version": saved.version,
                        "strategy": started.strategy,
                    },
                )
        note = None
        if spec is not None and started is None:
            note = (
                f"version {saved.version} is the first of {env}: published to everyone at "
                "once (a rollout needs a previous version to go back to)"
            )
        return Applied(env, saved, previous, diff, changed=True, rollout=started, note=note)

    async def revert(
        self,
        env: str,
        to: int,
        *,
        actor: str,
        message: str = "",
        expected_version: int | None = None,
        rollout: RolloutSpec | Mapping[str, Any] | None = None,
    ) -> Applied:
        """Save version ``to``'s document again, as a new version."""
        old = self.store.flags.version(env, to)
        return await self.apply(
            env,
            old.document,
            actor=actor,
            message=message or f"revert to version {to}",
            expected_version=expected_version,
            rollout=rollout,
            source=f"version {to}",
            revert_of=to,
        )

    # -- reading ----------------------------------------------------------------------------

    def compiled(self, env: str, version: int) -> CompiledFlagSet:
        key = (env, version)
        found = self._compiled.get(key)
        if found is None:
            found = compile_flag_set(
                self.store.flags.version(env, version).document, version=version
            )
            self._compiled[key] = found
            while len(self._compiled) > _CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return found

    def evaluate(
        self,
        env: str,
        key: str,
        context: Mapping[str, Any],
        *,
        version: int | None = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """Evaluate flag ``key`` server-side: in ``version``, or in what this context gets
        now (the current version, or the rollout's new one when the context is in its
        share — exactly what an agent would serve)."""
        if version is not None:
            return self._evaluated(env, version, None, key, context, explain)
        return self.evaluate_many(env, [(key, context)], explain=explain)[0]

    def evaluate_many(
        self,
        env: str,
        requests: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        explain: bool = False,
    ) -> list[dict[str, Any]]:
        """:meth:`evaluate` for many (key, context) pairs, the environment read once."""
        current = self.store.flags.environment(env).current_version
        if current is None:
            raise NotFoundError(f"flag environment {env!r} has no flag set yet")
        active = self.store.flag_rollouts.active_for(env)
        view = rollout_view(active) if active is not None else None
        out = []
        for key, context in requests:
            version, info = current, None
            if view is not None:
                new = gets_new_version(view, context)
                info = {**_view_json(view), "gets_new_version": new}
                version = view.to_version if new else view.from_version
            out.append(self._evaluated(env, version, info, key, context, explain))
        return out

    def _evaluated(
        self,
        env: str,
        version: int,
        rollout_info: dict[str, Any] | None,
        key: str,
        context: Mapping[str, Any],
        explain: bool,
    ) -> dict[str, Any]:
        flags = self.compiled(env, version)
        out: dict[str, Any] = {"env": env, "version": version, "rollout": rollout_info}
        if explain:
            explanation = flags.explain(key, context)
            return {**out, **explanation.as_dict(), "text": explanation.render()}
        r = flags.evaluate(key, context)
        return {
            **out,
            "flag": key,
            "value": r.value,
            "variant": r.variant,
            "reason": str(r.reason),
            "error_code": None if r.error_code is None else str(r.error_code),
            "error_message": r.error_message,
            "flag_metadata": dict(r.flag_metadata),
        }

    def diff(
        self, env: str, from_version: int | None, to_version: int | None
    ) -> tuple[int, int, FlagSetDiff]:
        """Versions ``from`` → ``to``. By default ``to`` is what users get: the version being
        rolled out, else the current one; ``from`` is the version that was live before
        ``to``, skipping versions that never were (rolled back, stopped, rolling out); 0,
        the empty set, when there is none."""
        info = self.store.flags.environment(env)
        if info.latest_version is None or info.current_version is None:
            raise NotFoundError(f"flag environment {env!r} has no versions yet")
        if to_version is None:
            active = self.store.flag_rollouts.active_for(env)
            to_version = info.current_version if active is None else active.to_version
        if from_version is None:
            never = self._never_live(env)
            from_version = next((v for v in range(to_version - 1, 0, -1) if v not in never), 0)
        new = self.store.flags.version(env, to_version).document
        old = self.store.flags.version(env, from_version).document if from_version >= 1 else {}
        return from_version, to_version, diff_flag_sets(old, new)

    def _never_live(self, env: str) -> set[int]:
        """Versions that have not been everyone's: their rollout was rolled back, stopped,
        or is still in progress (a version is published at most once)."""
        return {
            r.to_version
            for r in self.store.flag_rollouts.list(env, limit=1000)
            if r.active or r.phase in ("rolled_back", "stopped")
        }

    def history(self, env: str, limit: int = 50) -> list[dict[str, Any]]:
        """Versions newest first, each with what became of it: ``current``, ``rolling out``,
        ``rolled back``, ``stopped`` or ``previous``."""
        current = self.store.flags.environment(env).current_version
        fate: dict[int, FlagRollout] = {}
        for past in reversed(self.store.flag_rollouts.list(env, limit=1000)):
            fate[past.to_version] = past  # the newest rollout of a version wins
        rows = []
        for v in self.store.flags.history(env, limit=limit):
            r = fate.get(v.version)
            if v.version == current:
                status = "current"
            elif r is not None and r.active:
                status = f"rolling out ({RolloutState.from_json(r.state).percent} %)"
            elif r is not None and r.phase in ("rolled_back", "stopped"):
                status = r.phase.replace("_", " ")
            else:
                status = "previous"
            rows.append(
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "actor": v.actor,
                    "message": v.message,
                    "status": status,
                    "rollout": r.id if r is not None else None,
                }
            )
        return rows

    def rollout_json(self, r: FlagRollout) -> dict[str, Any]:
        state = RolloutState.from_json(r.state)
        spec = RolloutSpec.model_validate(r.strategy)
        return {
            "id": r.id,
            "env": r.env,
            "from_version": r.from_version,
            "to_version": r.to_version,
            "phase": r.phase,
            "active": r.active,
            "percent": state.percent,
            "step": state.step_index + 1,
            "strategy": r.strategy,
            "alarms": list(spec.alarms),
            "reason": state.reason,
            "alarm": state.alarm,
            "started_at": state.started_at,
            "ended_at": state.ended_at,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            **self.rollouts.progress(r),
        }


def parse_rollout(data: RolloutSpec | Mapping[str, Any] | None) -> RolloutSpec | None:
    """A rollout given as data, validated; problems are reported under ``rollout.``."""
    if data is None or isinstance(data, RolloutSpec):
        return data
    try:
        return RolloutSpec.model_validate(data)
    except ValidationError as exc:
        problems = spec_error_from(exc).problems
        raise SpecError(
            [Problem(f"rollout.{p.path}" if p.path else "rollout", p.message) for p in problems]
        ) from exc


def rollout_view(r: FlagRollout) -> RolloutView:
    return RolloutView(
        r.id, r.from_version, r.to_version, float(RolloutState.from_json(r.state).percent)
    )


def _view_json(view: RolloutView) -> dict[str, Any]:
    return {
        "id": view.id,
        "from_version": view.from_version,
        "to_version": view.to_version,
        "percent": view.percent,
    }


def diff_summary(diff: FlagSetDiff) -> dict[str, Any]:
    """For audit events: the keys added, removed and changed per kind, and the changes
    (a segment's joined and left ids cut to the first few, with their counts)."""
    summary: dict[str, Any] = {
        kind: {"added": [], "removed": [], "changed": []} for kind in ("flags", "segments")
    }
    for change in diff.changes:
        summary[f"{change.kind}s"][change.change].append(change.key)
    changes = diff.as_dict()
    for change, entry in zip(diff.changes, changes, strict=True):
        for f, item in zip(change.fields, entry["fields"], strict=True):
            if isinstance(f, IdsChange):
                item.update(
                    added=list(f.added[:_IDS_SHOWN]),
                    removed=list(f.removed[:_IDS_SHOWN]),
                    added_count=len(f.added),
                    removed_count=len(f.removed),
                )
    summary["changes"] = changes
    if diff.description is not None:
        summary["description"] = {"old": diff.description.old, "new": diff.description.new}
    return summary


def _count(diff: FlagSetDiff) -> str:
    parts = []
    for kind in ("flag", "segment"):
        marks = {
            c: sum(1 for x in diff.changes if x.kind == kind and x.change == c)
            for c in ("added", "changed", "removed")
        }
        if any(marks.values()):
            parts.append(f"{kind}s +{marks['added']} ~{marks['changed']} -{marks['removed']}")
    return "; ".join(parts) or "description only"


def _version_message(
    saved: FlagSetVersion,
    previous: int | None,
    diff: FlagSetDiff,
    rollout: FlagRollout | None,
    revert_of: int | None,
) -> str:
    how = f"rolling out from v{previous}" if rollout else "published"
    what = f"revert to v{revert_of}" if revert_of is not None else (saved.message or "")
    text = f"{saved.env} v{saved.version} by {saved.actor} ({how}; {_count(diff)})"
    return f"{text}: {what}" if what else text
