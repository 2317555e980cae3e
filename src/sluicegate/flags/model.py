"""The flag-set document: pydantic models, validation listing every problem, JSON Schema.

A flag set is what one environment serves; each saved version is immutable::

    segments:
      beta-testers: {ids: [u1, u2, u3]}
    flags:
      new-checkout:
        type: boolean                    # variants default to {on: true, off: false}
        default_variant: "off"
        rules:
          - {name: beta, when: {segment: beta-testers}, variant: "on"}
        fallthrough:
          split: [{variant: "on", weight: 25}, {variant: "off", weight: 75}]

The models check structure and each condition on its own; :mod:`._checks` checks what spans
fields (variants referenced exist, weights sum to 100, prerequisites, segments) on the raw
data, so a document with structural errors still gets all its other problems reported.
The document lives here, not in ``sluicegate.spec``, because its meaning is the evaluator's:
the operator table, value kinds and normal form are shared with :mod:`._compile`, which must
not import pydantic. Keys are a user-facing contract: extend, never rename.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from sluicegate.errors import Problem, SpecError
from sluicegate.flags._checks import semantic_problems
from sluicegate.flags._compile import one_number_kind
from sluicegate.flags._load import load_text, read_file
from sluicegate.flags._values import is_number, is_scalar, json_kind, parse_instant, parse_semver
from sluicegate.spec import LocatedError, SpecModel, check, join_path

__all__ = [
    "FLAG_TYPES",
    "MAX_SEGMENT_IDS",
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "Condition",
    "Flag",
    "FlagSet",
    "InSegment",
    "Not",
    "Outcome",
    "Prerequisite",
    "Rule",
    "Segment",
    "SplitEntry",
    "flag_set_schema",
    "load_flag_set",
    "parse_flag_set",
    "validate_flag_set",
]

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SALT_PATTERN = r"^[^:]{0,64}$"
MAX_SEGMENT_IDS = 1_000_000
FLAG_TYPES = ("boolean", "string", "number", "object")
SCHEMA_ID = "https://sluicegate.dev/schema/flag-set/v1.json"

# Operator -> what its ``value`` must be (the message names it on a mistake).
OPERATORS: dict[str, str] = {
    "eq": "a string, number or boolean",
    "neq": "a string, number or boolean",
    "in": "a non-empty list of strings, numbers or booleans",
    "not_in": "a non-empty list of strings, numbers or booleans",
    "contains": "a string, number or boolean",
    "starts_with": "a string or a non-empty list of strings",
    "ends_with": "a string or a non-empty list of strings",
    "matches": "a regular expression (Python re syntax, searched anywhere in the value)",
    "lt": "a number",
    "lte": "a number",
    "gt": "a number",
    "gte": "a number",
    "semver_eq": "a semantic version like 1.4.0",
    "semver_lt": "a semantic version like 1.4.0",
    "semver_lte": "a semantic version like 1.4.0",
    "semver_gt": "a semantic version like 1.4.0",
    "semver_gte": "a semantic version like 1.4.0",
    "before": "an ISO 8601 date or date-time like 2026-03-01T12:00:00Z",
    "after": "an ISO 8601 date or date-time like 2026-03-01T12:00:00Z",
    "exists": "absent (exists takes no value)",
}
Operator = Literal[
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "lt",
    "lte",
    "gt",
    "gte",
    "semver_eq",
    "semver_lt",
    "semver_lte",
    "semver_gt",
    "semver_gte",
    "before",
    "after",
    "exists",
]
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Attribute = Annotated[str, Field(min_length=1, max_length=256)]


class _Model(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def _value_problem(op: str, value: Any, given: bool) -> str | None:
    """Why ``value`` does not suit ``op``, or None when it does."""
    if op == "exists":
        return None if not given else "exists takes no value; remove it"
    wanted = OPERATORS[op]
    if not given:
        return f"{op} needs a value: {wanted}"
    ok: bool
    if op in ("eq", "neq", "contains"):
        ok = is_scalar(value)
    elif op in ("in", "not_in"):
        ok = isinstance(value, list) and bool(value) and all(is_scalar(v) for v in value)
    elif op in ("starts_with", "ends_with"):
        ok = isinstance(value, str) or (
            isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
        )
    elif op == "matches":
        if not isinstance(value, str):
            ok = False
        else:
            try:
                re.compile(value)
            except re.error as exc:
                return f"not a valid regular expression: {exc}"
            ok = True
    elif op in ("lt", "lte", "gt", "gte"):
        ok = is_number(value) and is_scalar(value)
    elif op.startswith("semver_"):
        ok = parse_semver(value) is not None
    else:  # before, after
        ok = isinstance(value, str) and parse_instant(value) is not None
    return None if ok else f"{op} needs {wanted}, not {json_kind(value)} {value!r}"[:300]


class Condition(_Model):
    """``{attribute, op, value}``: one test of one context attribute."""

    attribute: Attribute
    op: Operator
    value: Any = None

    @check
    def _value_suits_op(self) -> list[Problem]:
        problem = _value_problem(self.op, self.value, "value" in self.model_fields_set)
        return [Problem("value", problem)] if problem else []


class AllOf(_Model):
    """``{all: [...]}``: every condition holds."""

    all: list[Predicate] = Field(min_length=1)


class AnyOf(_Model):
    """``{any: [...]}``: at least one condition holds."""

    any: list[Predicate] = Field(min_length=1)


class Not(_Model):
    """``{not: ...}``: the condition does not hold (also true when its attribute is missing)."""

    not_: Predicate = Field(alias="not")


class InSegment(_Model):
    """``{segment: name}``: the context belongs to the named segment."""

    segment: Key


def _predicate_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not", "segment"):
            if key in value:
                return "~" + key
        return "~condition"
    if isinstance(value, BaseModel):
        return {
            Condition: "~condition",
            AllOf: "~all",
            AnyOf: "~any",
            Not: "~not",
            InSegment: "~segment",
        }.get(type(value))
    return None


Predicate = Annotated[
    Annotated[Condition, Tag("~condition")]
    | Annotated[AllOf, Tag("~all")]
    | Annotated[AnyOf, Tag("~any")]
    | Annotated[Not, Tag("~not")]
    | Annotated[InSegment, Tag("~segment")],
    Discriminator(
        _predicate_tag,
        custom_error_type="predicate",
        custom_error_message="a condition is a mapping: {attribute, op, value}, {all: [...]},"
        " {any: [...]}, {not: ...} or {segment: name}",
    ),
]


class SplitEntry(_Model):
    """One variant's share of a split, in percent (steps of 0.001)."""

    variant: Key
    weight: Annotated[float, Field(ge=0, le=100)]


class Outcome(_Model):
    """What a rule or the fallthrough serves: one variant, or a split among variants."""

    variant: Key | None = None
    split: Annotated[list[SplitEntry], Field(min_length=1)] | None = None
    bucket_by: Attribute | None = Field(
        None, description="attribute the split buckets by; default the targeting key"
    )

    @check
    def _one_outcome(self) -> list[Problem]:
        return _outcome_problems(self.variant, self.split, self.bucket_by)


def _outcome_problems(
    variant: str | None, split: list[SplitEntry] | None, bucket_by: str | None
) -> list[Problem]:
    if (variant is None) == (split is None):
        return [Problem("", "give either variant or split")]
    if bucket_by is not None and split is None:
        return [Problem("", "bucket_by only goes with a split")]
    return []


class Rule(_Model):
    """``when`` the condition holds, serve ``variant`` or ``split``; first match wins."""

    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    when: Predicate
    variant: Key | None = None
    split: Annotated[list[SplitEntry], Field(min_length=1)] | None = None
    bucket_by: Attribute | None = None

    @check
    def _one_outcome(self) -> list[Problem]:
        return _outcome_problems(self.variant, self.split, self.bucket_by)


class Prerequisite(_Model):
    """Flag ``flag`` must be enabled and serve ``variant`` (or one of ``variants``); with
    neither, ``flag`` must be a boolean flag serving ``true``."""

    flag: Key
    variant: Key | None = None
    variants: Annotated[list[Key], Field(min_length=1)] | None = None

    @check
    def _not_both(self) -> list[Problem]:
        if self.variant is not None and self.variants is not None:
            return [Problem("", "give variant or variants, not both")]
        return []


class Segment(_Model):
    """A named group of users: listed ids (matched against ``attribute``, default the
    targeting key) and/or a condition; a context is a member if either says so."""

    description: str = ""
    attribute: Attribute | None = None
    ids: Annotated[list[str], Field(max_length=MAX_SEGMENT_IDS)] | None = None
    when: Predicate | None = None

    @field_validator("ids", mode="before")
    @classmethod
    def _integer_ids(cls, value: Any) -> Any:
        """Numeric user ids (``12345`` unquoted in YAML) are listed as decimal strings."""
        if isinstance(value, list):
            return [str(v) if type(v) is int else v for v in value]
        return value

    @check
    def _something(self) -> list[Problem]:
        if self.ids is None and self.when is None:
            return [Problem("", "a segment needs ids, when, or both")]
        if self.attribute is not None and self.ids is None:
            return [Problem("", "attribute names what the ids are matched against; add ids")]
        return []


class Flag(_Model):
    """One flag. Boolean flags may omit ``variants`` (``{on: true, off: false}``) and then
    ``default_variant`` (``off``)."""

    description: str = ""
    type: Literal["boolean", "string", "number", "object"]
    variants: Annotated[dict[Key, Any], Field(min_length=1)]
    default_variant: Key
    enabled: bool = Field(True, description="kill switch: false serves default_variant")
    salt: Annotated[str, Field(pattern=SALT_PATTERN)] = Field(
        "", description="changes every split's buckets (re-randomizes the flag)"
    )
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    fallthrough: Outcome | None = Field(
        None, description="when no rule matches; default: serve default_variant"
    )

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("type") == "boolean" and "variants" not in data:
            data = {**data, "variants": {"on": True, "off": False}}
            data.setdefault("default_variant", "off")
        if data.get("type") == "number" and isinstance(data.get("variants"), dict):
            data = {**data, "variants": one_number_kind(data["variants"])}
        return data


class FlagSet(_Model):
    """A whole flag-set version: named segments and flags."""

    model_config = ConfigDict(title="Sluicegate flag set")

    description: str = ""
    segments: dict[Key, Segment] = Field(default_factory=dict)
    flags: dict[Key, Flag] = Field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The normal form as plain JSON data: defaults filled in, absent options left out.
        This is what is stored, compared by :func:`~sluicegate.flags.diff_flag_sets` and
        compiled by :func:`~sluicegate.flags.compile_flag_set`."""
        return _document(self)

    def compile(self, version: int | str | None = None) -> Any:
        """Compile to a :class:`~sluicegate.flags.CompiledFlagSet`."""
        from sluicegate.flags._compile import compile_flag_set

        return compile_flag_set(self.document(), version=version)


for _model in (AllOf, AnyOf, Not, Segment, Rule):
    _model.model_rebuild()


def _document(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        out[field.alias or name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _document(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("~") and part != "[key]":  # union tags, "the key itself"
            out += f".{part}" if out else part
    return out


def _structural_problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        path = _path(err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, LocatedError):
            problems.extend(Problem(join_path(path, p.path), p.message) for p in cause.problems)
        else:
            problems.append(Problem(path, err["msg"].removeprefix("Value error, ")))
    return problems


def validate_flag_set(data: Any, source: str | None = None) -> FlagSet:
    """Validate parsed data; raises SpecError listing every problem by path."""
    if not isinstance(data, dict):
        raise SpecError(
            [
                Problem(
                    "", f"a flag set is a mapping with flags and segments, not {json_kind(data)}"
                )
            ],
            source=source,
        )
    problems: list[Problem] = []
    model: FlagSet | None = None
    try:
        model = FlagSet.model_validate(data)
    except ValidationError as exc:
        problems.extend(_structural_problems(exc))
    seen = {(p.path, p.message) for p in problems}
    problems.extend(p for p in semantic_problems(data) if (p.path, p.message) not in seen)
    if problems or model is None:
        raise SpecError(problems, source=source)
    return model


def parse_flag_set(text: str, source: str = "<input>") -> FlagSet:
    """Parse YAML or JSON text and validate it."""
    return validate_flag_set(load_text(text, source), source)


def load_flag_set(path: str | Path) -> FlagSet:
    """Read a YAML or JSON flag-set file and validate it."""
    return validate_flag_set(read_file(path), str(path))


def flag_set_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flag-set document. It checks structure only;
    :func:`validate_flag_set` adds the checks across fields."""
    schema = FlagSet.model_json_schema(by_alias=True)
    flag = schema["$defs"]["Flag"]
    # A boolean flag may leave out variants and default_variant (see Flag).
    flag["required"] = ["type"]
    flag["if"] = {"properties": {"type": {"const": "boolean"}}}
    flag["else"] = {"required": ["variants", "default_variant"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
