"""Read a flag-set file (YAML or JSON) into plain data, refusing duplicate keys.

YAML is read with YAML 1.2's booleans: only ``true``/``false`` are booleans, so the variant
names ``on``, ``off``, ``yes`` and ``no`` stay strings (YAML 1.1, PyYAML's default, turns
``on:`` into ``True:``). Timestamps stay strings too (``before: 2026-01-01`` is a date
string, not a ``datetime.date``), and so do sexagesimal numbers like ``1:20``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sluicegate.errors import ConfigFileError, Problem, SpecError

__all__ = ["load_text", "read_file"]

_DROPPED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans, integers and floats."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _duplicates(node: yaml.Node, path: str) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                yield Problem(
                    _join(path, key), f"duplicate key {key!r} (lines {seen[key]} and {line})"
                )
            else:
                seen[key] = line
            yield from _duplicates(value_node, _join(path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicates(item, _join(path, index))


def load_text(text: str, source: str = "<input>") -> Any:
    """Parse YAML or JSON text; a syntax error or a duplicate key raises SpecError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = list(_duplicates(node, ""))
        if problems:
            raise SpecError(problems, source=source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise ConfigFileError(
            source, f"not valid YAML{where}{': ' + problem if problem else ''}"
        ) from exc
    finally:
        loader.dispose()


def read_file(path: str | Path) -> Any:
    """Read and parse a flag-set file (see :func:`load_text`)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(source, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            source, f"cannot read file: not UTF-8 text (bad byte at offset {exc.start})"
        ) from exc
    return load_text(text, source)
