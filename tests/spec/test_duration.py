"""Durations as users write them, and back: ``500ms``, ``5s``, ``2m``, ``1h``, ``7d``."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from sluicegate.spec import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("9ms", 0.009),
        ("1ms", 0.001),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("1.5s", 1.5),
        ("1.5m", 90.0),
        ("0s", 0.0),
        ("30", 30.0),
        (" 5 s ", 5.0),
    ],
)
def test_a_duration_string_is_parsed_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("number", "seconds"), [(5, 5.0), (0, 0.0), (0.25, 0.25)])
def test_a_plain_number_is_seconds(number: float, seconds: float) -> None:
    assert parse_duration(number) == seconds
    assert isinstance(parse_duration(number), float)


@pytest.mark.parametrize("text", ["", "5x", "s", "5 sec", "1h30m", "five", "5S", "1e3s"])
def test_a_string_in_another_form_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == f"{text!r} is not a duration; write 500ms, 5s, 2m, 1h or 7d"


@pytest.mark.parametrize("value", [None, [5], {"s": 5}])
def test_a_value_that_is_not_a_string_or_number_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_duration(value: bool) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like 500ms, 5s, 2m, 1h or 7d"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_a_negative_number_is_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="a duration cannot be negative"):
        parse_duration(value)


def test_a_negative_string_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="'-5s' is not a duration"):
        parse_duration("-5s")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_a_non_finite_number_is_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="is not a finite duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.001, "1ms"),
        (0.5, "500ms"),
        (1.5, "1500ms"),
        (1.0, "1s"),
        (59.0, "59s"),
        (90.0, "90s"),
        (120.0, "2m"),
        (5400.0, "90m"),
        (3600.0, "1h"),
        (86400.0, "1d"),
        (604800.0, "7d"),
        (90000.0, "25h"),
    ],
)
def test_format_duration_writes_the_largest_exact_unit(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_every_whole_millisecond_survives_a_round_trip() -> None:
    # Every millisecond up to 200 s, then a stride through the rest of a week.
    millis = [*range(200_001), *range(200_001, 604_800_001, 99_991)]
    broken = [ms for ms in millis if parse_duration(format_duration(ms / 1000)) != ms / 1000]
    assert broken == []


@pytest.mark.parametrize("text", ["250ms", "9ms", "5s", "2m", "1h", "7d", "90s", "36h"])
def test_a_canonical_string_survives_a_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


class _Model(BaseModel):
    wait: Duration


def test_duration_fields_accept_strings_and_numbers() -> None:
    assert _Model(wait="2m").wait == 120.0  # type: ignore[arg-type]
    assert _Model(wait=3).wait == 3.0


def test_a_bad_duration_field_reports_the_parse_message() -> None:
    with pytest.raises(ValidationError) as info:
        _Model(wait="soon")  # type: ignore[arg-type]
    (error,) = info.value.errors()
    assert error["loc"] == ("wait",)
    assert "'soon' is not a duration" in error["msg"]
