"""Read YAML/JSON files and documents into validated spec models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sluicegate.errors import ConfigFileError
from sluicegate.spec._errors import spec_error_from

__all__ = ["load_file", "parse_document"]

M = TypeVar("M", bound=BaseModel)


def parse_document(model: type[M], data: Any, source: str | None = None) -> M:
    """Validate already-parsed data; raises SpecError listing every problem by path."""
    if not isinstance(data, dict):
        raise ConfigFileError(source or "<input>", "expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from(exc, source) from exc


def load_file(model: type[M], path: str | Path) -> M:
    """Read and validate a YAML (or JSON, a subset of YAML) file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(source, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            source, f"cannot read file: not UTF-8 text (bad byte at offset {exc.start})"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        what = f": {problem}" if problem else ""
        raise ConfigFileError(source, f"not valid YAML{where}{what}") from exc
    return parse_document(model, data, source)
