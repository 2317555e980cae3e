"""Checks across fields of a flag-set document, run on the raw data.

They tolerate any structure (what is malformed is reported by the models), so one run
reports a bad regex in one flag together with an unknown variant in another: unknown
variants, segments and prerequisite flags, variant values of the wrong type, split weights
that do not sum to 100, duplicate rule names, and cycles among prerequisites or segments.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from sluicegate.errors import Problem
from sluicegate.flags._values import is_number, json_kind

__all__ = ["find_cycles", "segment_refs", "semantic_problems", "weight_units"]

_TYPES = ("boolean", "string", "number", "object")


def weight_units(weight: float) -> int | None:
    """A split weight in thousandths of a percent (= buckets), None if finer than 0.001."""
    units = round(weight * 1000)
    return units if abs(weight * 1000 - units) < 1e-6 else None


def segment_refs(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, segment name) of every ``{segment: name}`` in a raw condition tree."""
    if not isinstance(node, Mapping):
        return
    if isinstance(node.get("segment"), str):
        yield f"{path}.segment", node["segment"]
    for key in ("all", "any"):
        items = node.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                yield from segment_refs(item, f"{path}.{key}[{i}]")
    if "not" in node:
        yield from segment_refs(node["not"], f"{path}.not")


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each cycle once, as the list of nodes from its smallest one (``[a, b]`` = a→b→a)."""
    cycles: dict[tuple[str, ...], list[str]] = {}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                low = cycle.index(min(cycle))
                cycle = cycle[low:] + cycle[:low]
                cycles.setdefault(tuple(cycle), cycle)
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node)
    return list(cycles.values())


def _type_problem(flag_type: str, value: Any) -> str | None:
    if flag_type == "boolean" and not isinstance(value, bool):
        return f"a boolean flag's variant value is true or false, not {json_kind(value)}"
    if flag_type == "string" and not isinstance(value, str):
        return f"a string flag's variant value is a string, not {json_kind(value)}"
    if flag_type == "number" and not (is_number(value) and math.isfinite(value)):
        return f"a number flag's variant value is a finite number, not {json_kind(value)}"
    if flag_type == "object" and not isinstance(value, dict):
        return f"an object flag's variant value is a JSON object, not {json_kind(value)}"
    return None


def _unknown(kind: str, name: str, known: Any) -> str:
    names = ", ".join(repr(k) for k in sorted(map(str, known))[:10])
    return f"unknown {kind} {name!r}" + (f" (known: {names})" if names else "")


def _outcome(
    outcome: Mapping[str, Any], path: str, names: set[str] | None, out: list[Problem]
) -> None:
    variant = outcome.get("variant")
    if isinstance(variant, str) and names is not None and variant not in names:
        out.append(Problem(f"{path}.variant", _unknown("variant", variant, names)))
    split = outcome.get("split")
    if not isinstance(split, list):
        return
    total, complete, seen = 0, True, set()
    for j, entry in enumerate(split):
        if not isinstance(entry, Mapping):
            complete = False
            continue
        name = entry.get("variant")
        if isinstance(name, str):
            if names is not None and name not in names:
                out.append(Problem(f"{path}.split[{j}].variant", _unknown("variant", name, names)))
            if name in seen:
                out.append(
                    Problem(
                        f"{path}.split[{j}].variant", f"variant {name!r} is already in this split"
                    )
                )
            seen.add(name)
        weight = entry.get("weight")
        if is_number(weight) and 0 <= weight <= 100:
            units = weight_units(weight)
            if units is None:
                out.append(
                    Problem(
                        f"{path}.split[{j}].weight",
                        f"weights are percentages in steps of 0.001, not {weight}",
                    )
                )
                complete = False
            else:
                total += units
        else:
            complete = False
    if complete and split and total != 100_000:
        out.append(Problem(f"{path}.split", f"weights sum to {total / 1000:g}, not 100"))


def _flag(
    key: str, flag: Mapping[str, Any], segments: Mapping[str, Any], out: list[Problem]
) -> tuple[str | None, set[str] | None]:
    base = f"flags.{key}"
    flag_type = flag.get("type") if flag.get("type") in _TYPES else None
    variants = flag.get("variants")
    default = flag.get("default_variant")
    if flag_type == "boolean" and "variants" not in flag:
        variants = {"on": True, "off": False}
        default = flag.get("default_variant", "off")
    names = {str(k) for k in variants} if isinstance(variants, Mapping) else None
    if isinstance(variants, Mapping) and flag_type is not None:
        for name, value in variants.items():
            problem = _type_problem(flag_type, value)
            if problem:
                out.append(Problem(f"{base}.variants.{name}", problem))
    if isinstance(default, str) and names is not None and default not in names:
        out.append(Problem(f"{base}.default_variant", _unknown("variant", default, names)))
    rules = flag.get("rules")
    if isinstance(rules, list):
        rule_names: dict[str, int] = {}
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            path = f"{base}.rules[{i}]"
            name = rule.get("name")
            if isinstance(name, str):
                if name in rule_names:
                    out.append(
                        Problem(
                            f"{path}.name",
                            f"rule name {name!r} is already used by rules[{rule_names[name]}]",
                        )
                    )
                rule_names.setdefault(name, i)
            _outcome(rule, path, names, out)
            for ref_path, ref in segment_refs(rule.get("when"), f"{path}.when"):
                if ref not in segments:
                    out.append(Problem(ref_path, _unknown("segment", ref, segments)))
    fallthrough = flag.get("fallthrough")
    if isinstance(fallthrough, Mapping):
        _outcome(fallthrough, f"{base}.fallthrough", names, out)
    return flag_type, names


def _prerequisites(
    flags: Mapping[str, Any],
    info: Mapping[str, tuple[str | None, set[str] | None]],
    out: list[Problem],
) -> None:
    graph: dict[str, list[str]] = {}
    first_edge: dict[tuple[str, str], str] = {}
    for key, flag in flags.items():
        prerequisites = flag.get("prerequisites") if isinstance(flag, Mapping) else None
        graph[key] = []
        if not isinstance(prerequisites, list):
            continue
        for j, prerequisite in enumerate(prerequisites):
            if not isinstance(prerequisite, Mapping) or not isinstance(
                prerequisite.get("flag"), str
            ):
                continue
            path = f"flags.{key}.prerequisites[{j}]"
            target = prerequisite["flag"]
            if target not in flags:
                out.append(Problem(f"{path}.flag", _unknown("flag", target, flags)))
                continue
            graph[key].append(target)
            first_edge.setdefault((key, target), f"{path}.flag")
            target_type, target_names = info.get(target, (None, None))
            wanted = prerequisite.get("variants", [prerequisite.get("variant")])
            if isinstance(wanted, list) and wanted != [None]:
                for k, name in enumerate(wanted):
                    where = (
                        f"{path}.variants[{k}]" if "variants" in prerequisite else f"{path}.variant"
                    )
                    if (
                        isinstance(name, str)
                        and target_names is not None
                        and name not in target_names
                    ):
                        out.append(
                            Problem(where, _unknown(f"variant of {target}", name, target_names))
                        )
            elif target_type not in (None, "boolean"):
                out.append(
                    Problem(
                        path,
                        f"{target!r} is a {target_type} flag: name the variant(s) it must serve",
                    )
                )
    for cycle in find_cycles(graph):
        loop = " -> ".join([*cycle, cycle[0]])
        out.append(
            Problem(first_edge[(cycle[0], cycle[1 % len(cycle)])], f"prerequisite cycle: {loop}")
        )


def semantic_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every cross-field problem of a raw flag-set document, by path."""
    out: list[Problem] = []
    segments = data.get("segments")
    segments = segments if isinstance(segments, Mapping) else {}
    flags = data.get("flags")
    flags = flags if isinstance(flags, Mapping) else {}
    graph: dict[str, list[str]] = {}
    first_edge: dict[tuple[str, str], str] = {}
    for key, segment in segments.items():
        graph[key] = []
        if not isinstance(segment, Mapping):
            continue
        for path, ref in segment_refs(segment.get("when"), f"segments.{key}.when"):
            if ref not in segments:
                out.append(Problem(path, _unknown("segment", ref, segments)))
            else:
                graph[key].append(ref)
                first_edge.setdefault((key, ref), path)
    for cycle in find_cycles(graph):
        loop = " -> ".join([*cycle, cycle[0]])
        out.append(Problem(first_edge[(cycle[0], cycle[1 % len(cycle)])], f"segment cycle: {loop}"))
    info = {
        key: _flag(key, flag, segments, out)
        for key, flag in flags.items()
        if isinstance(flag, Mapping)
    }
    _prerequisites(flags, info, out)
    return out
