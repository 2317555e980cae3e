"""The one list of event kinds (notify/_kinds.py) is complete, and a webhook pattern that
matches none of them is refused with the pattern it most likely meant.

Completeness is checked against the source: every ``<store>.events.append(kind, ...)`` in
``src/sluicegate`` is found by reading the code, and each kind it can append, constant or
built from an f-string, must be listed. A kind expression this test cannot work out fails
it until it is taught (``DYNAMIC`` below) and the kinds are listed.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path

import pytest

import sluicegate
from sluicegate.compute.base import EventKind
from sluicegate.notify import EVENT_FAMILIES, EVENT_KINDS, check_subscription, pattern_problem

SRC = Path(sluicegate.__file__).parent


class UnresolvedError(Exception):
    """A kind expression the scanner cannot turn into strings."""


def module_of(path: Path) -> str:
    return ".".join(("sluicegate", *path.relative_to(SRC).with_suffix("").parts))


class Module:
    """One source file: its tree, and each node's enclosing function."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rel = path.relative_to(SRC).as_posix()
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.function_of: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
        self._index(self.tree, None)

    def _index(self, node: ast.AST, func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            self.function_of[child] = func
            self._index(child, inner)

    def calls(self, named: Callable[[ast.expr], bool]) -> Iterator[ast.Call]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and named(node.func):
                yield node

    def resolve(self, expr: ast.expr, at: ast.AST) -> set[str]:
        """Every string ``expr`` can be where it stands; UnresolvedError when unknown."""
        key = (self.rel, ast.unparse(expr))
        if key in DYNAMIC:
            return DYNAMIC[key]()
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.JoinedStr):
            parts = [
                {v.value} if isinstance(v, ast.Constant) else self.resolve(v.value, at)  # type: ignore[attr-defined]
                for v in expr.values
            ]
            return {"".join(p) for p in product(*parts)}
        if isinstance(expr, ast.IfExp):
            return self.resolve(expr.body, at) | self.resolve(expr.orelse, at)
        if isinstance(expr, ast.Name):
            return self._name(expr.id, at)
        raise UnresolvedError(f"{self.rel}:{expr.lineno}: {ast.unparse(expr)}")

    def _name(self, name: str, at: ast.AST) -> set[str]:
        func = self.function_of.get(at)
        found: set[str] = set()
        if func is not None:
            found |= self._bindings(name, func)
            params = [a.arg for a in func.args.args]
            if name in params:
                found |= self._arguments(func, params.index(name), name)
        if not found:
            value = getattr(importlib.import_module(module_of(self.path)), name, None)
            if isinstance(value, str):
                found.add(value)
        if not found:
            raise UnresolvedError(f"{self.rel}: cannot tell what {name!r} holds")
        return found

    def _bindings(self, name: str, func: ast.AST) -> set[str]:
        """Constants assigned to ``name`` in ``func``: plainly, by unpacking, by a for loop
        over a literal tuple of tuples."""
        out: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    out |= self._unpack(name, target, node.value)
            elif isinstance(node, ast.For) and isinstance(node.iter, (ast.Tuple, ast.List)):
                for item in node.iter.elts:
                    out |= self._unpack(name, node.target, item)
        return out

    def _unpack(self, name: str, target: ast.expr, value: ast.expr) -> set[str]:
        if isinstance(target, ast.Name) and target.id == name:
            return self.resolve(value, value)
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            out: set[str] = set()
            for t, v in zip(target.elts, value.elts, strict=False):
                out |= self._unpack(name, t, v)
            return out
        return set()

    def _arguments(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, index: int, name: str
    ) -> set[str]:
        """A parameter's default and what every call in this module passes for it."""
        out: set[str] = set()
        defaults = func.args.defaults
        first_default = len(func.args.args) - len(defaults)
        if index >= first_default:
            out |= self.resolve(defaults[index - first_default], func)
        for call in self.calls(lambda f: isinstance(f, ast.Name) and f.id == func.name):
            if index < len(call.args):
                out |= self.resolve(call.args[index], call)
            for kw in call.keywords:
                if kw.arg == name:
                    out |= self.resolve(kw.value, call)
        return out


def modules(under: str = "") -> list[Module]:
    return [Module(p) for p in sorted((SRC / under).rglob("*.py"))]


def record_event_kinds(under: str) -> set[str]:
    """The kinds of every ``RecordEvent(kind, ...)`` built in a package."""
    out: set[str] = set()
    for m in modules(under):
        for call in m.calls(lambda f: isinstance(f, ast.Name) and f.id == "RecordEvent"):
            out |= m.resolve(call.args[0], call)
    return out


# Kind expressions whose values come from elsewhere: (file, expression) -> its values.
DYNAMIC: dict[tuple[str, str], Callable[[], set[str]]] = {
    ("deploy/controller.py", "e.kind"): lambda: record_event_kinds("deploy"),
    ("deploy/_world.py", "event.kind.value"): lambda: {k.value for k in EventKind},
    ("flagservice/rollouts.py", "action.kind"): lambda: record_event_kinds("flags"),
    # a deployment rolling back ends as state.ending: rolled back, failed or stopped
    ("deploy/lifecycle.py", "ending.value"): lambda: {"rolled_back", "failed", "stopped"},
    # the two commands that abort a deployment
    ("deploy/lifecycle.py", "obs.command.value"): lambda: {"rollback", "stop"},
    # a flag rollout reverted: rolled back or stopped (completing is its own event)
    ("flags/rollout.py", "ending.value"): lambda: {"rolled_back", "stopped"},
}


def appended_kinds() -> dict[str, set[str]]:
    """Every kind some ``x.events.append`` in the source can append -> where."""
    out: dict[str, set[str]] = {}
    for m in modules():
        for call in m.calls(
            lambda f: (
                isinstance(f, ast.Attribute)
                and f.attr == "append"
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "events"
            )
        ):
            kind = next((kw.value for kw in call.keywords if kw.arg == "kind"), None)
            kind = kind if kind is not None else call.args[0]
            for k in m.resolve(kind, call):
                out.setdefault(k, set()).add(f"{m.rel}:{call.lineno}")
    return out


def test_every_kind_the_code_appends_is_listed_in_one_place() -> None:
    appended = appended_kinds()
    missing = {k: sorted(w) for k, w in appended.items() if k not in EVENT_KINDS}
    assert not missing, f"add these to EVENT_FAMILIES in notify/_kinds.py: {missing}"
    # the scan found the kinds of every family (a scanner that finds nothing proves nothing)
    assert {k.split(".")[0] for k in appended} == set(EVENT_FAMILIES)
    assert {"deployment.succeeded", "deployment.rolled_back", "replica.gone"} <= set(appended)


def test_no_kind_is_listed_that_the_code_never_appends() -> None:
    assert sorted(set(EVENT_KINDS) - set(appended_kinds())) == []


@pytest.mark.parametrize(
    "pattern",
    ["*", "deployment.*", "alarm.state", "flags.rollout.*", "webhook.failed", "*.failed", "rep*"],
)
def test_a_pattern_matching_some_kind_is_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


FAMILIES = "(families: alarm.*, deployment.*, flags.*, replica.*, service.*, token.*, webhook.*)"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "deploymnet.*",
            f"'deploymnet.*' matches no event kind; did you mean 'deployment.*'? {FAMILIES}",
        ),
        (
            "alarm.stat",
            f"'alarm.stat' matches no event kind; did you mean 'alarm.state'? {FAMILIES}",
        ),
        (
            "alarms.state",
            f"'alarms.state' matches no event kind; did you mean 'alarm.state'? {FAMILIES}",
        ),
        ("build.*", f"'build.*' matches no event kind {FAMILIES}"),
    ],
)
def test_a_pattern_that_can_never_match_is_refused_with_a_suggestion(
    pattern: str, message: str
) -> None:
    assert pattern_problem(pattern) == message


def test_a_subscription_names_each_pattern_that_can_never_match_at_its_index() -> None:
    problems = check_subscription("https://x/", ["alarm.*", "deploymnet.*"], None)
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("events[1]", "'deploymnet.*' matches no event kind")
    ]


def test_the_table_in_the_notifications_guide_lists_the_same_kinds() -> None:
    guide = (SRC.parents[1] / "docs" / "notifications.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z]+)\.\*` \| (.+) \|$", guide, flags=re.MULTILINE)
    assert {family: tuple(re.findall(r"`([^`]+)`", kinds)) for family, kinds in rows} == (
        EVENT_FAMILIES
    )
