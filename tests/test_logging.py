"""Logging set-up: one stderr handler, text or JSON lines; secrets shown only by a prefix."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from sluicegate._logging import LogSettings, configure_logging, redact

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<name>\S+): (?P<msg>.*)$"
)


def _ours(handler: logging.Handler) -> bool:
    return bool(getattr(handler, "_sluicegate_handler", False))


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_lines_go_to_stderr_in_the_documented_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info")
    logging.getLogger("sluicegate.router").info("listening on %s", "127.0.0.1:8080")
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    match = TEXT_LINE.match(line)
    assert match, line
    assert match.group("level", "name", "msg") == (
        "INFO",
        "sluicegate.router",
        "listening on 127.0.0.1:8080",
    )


def test_records_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning")
    log = logging.getLogger("sluicegate.test")
    log.info("quiet")
    log.warning("loud")
    lines = capsys.readouterr().err.splitlines()
    assert [TEXT_LINE.match(line).group("msg") for line in lines] == ["loud"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("debug", logging.DEBUG),
        ("INFO", logging.INFO),
        ("warn", logging.WARNING),
        (" error ", logging.ERROR),
        ("critical", logging.CRITICAL),
    ],
)
def test_level_names_are_case_insensitive(name: str, level: int) -> None:
    configure_logging(name)
    assert logging.getLogger().level == level


def test_an_unknown_level_is_rejected_naming_the_accepted_ones() -> None:
    with pytest.raises(ValueError) as info:
        configure_logging("loud")
    assert str(info.value) == (
        "unknown log level 'loud'; use one of debug, info, warning, error, critical"
    )


def test_configuring_twice_leaves_one_handler_and_no_duplicate_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info")
    configure_logging("info", json=True)
    assert len([h for h in logging.getLogger().handlers if _ours(h)]) == 1
    logging.getLogger("sluicegate.test").info("once")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "once"


def test_handlers_installed_by_others_are_kept() -> None:
    root = logging.getLogger()
    theirs = logging.NullHandler()
    root.addHandler(theirs)
    configure_logging("info")
    configure_logging("debug")
    assert theirs in root.handlers


def test_json_mode_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", json=True)
    log = logging.getLogger("sluicegate.deploy")
    log.debug("step %d of %d", 2, 5)
    log.warning('a "quoted"\nmultiline message', extra={"deployment": "d-1", "weight": 10})
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "DEBUG",
        "logger": "sluicegate.deploy",
        "message": "step 2 of 5",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert second["message"] == 'a "quoted"\nmultiline message'
    assert (second["deployment"], second["weight"]) == ("d-1", 10)


def test_json_mode_includes_the_traceback_of_an_exception(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", json=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("sluicegate.test").exception("failed")
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_json_mode_survives_values_json_cannot_encode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", json=True)
    logging.getLogger("sluicegate.test").info("x", extra={"where": object()})
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["where"].startswith("<object object at")


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("s3cr3t-token-value", "s3cr…"),
        ("abcdefgh", "abcd…"),
        ("abcdefg", "…"),
        ("abc", "…"),
        ("", "…"),
    ],
)
def test_redact_shows_at_most_the_first_4_characters(secret: str, shown: str) -> None:
    assert redact(secret) == shown


def test_redact_never_contains_the_rest_of_the_secret() -> None:
    secret = "tok_" + "X" * 40
    assert "X" not in redact(secret)


def test_log_settings_handed_on_by_environment_come_back_the_same() -> None:
    for settings in (LogSettings(), LogSettings("debug", json=True), LogSettings("warning")):
        assert LogSettings.from_env(settings.env()) == settings
    assert LogSettings.from_env({}) == LogSettings("info", json=False)


def test_log_settings_as_sluice_options_go_before_the_command() -> None:
    assert LogSettings().argv() == ["--log-level", "info"]
    assert LogSettings("debug", json=True).argv() == ["--log-level", "debug", "--log-json"]


def test_a_tag_names_the_process_in_text_and_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", tag="worker-3")
    logging.getLogger("sluicegate.router").info("up")
    _, err = capsys.readouterr()
    assert err.strip().endswith(" INFO worker-3 sluicegate.router: up")
    configure_logging("info", json=True, tag="worker-3")
    logging.getLogger("sluicegate.router").info("up")
    _, err = capsys.readouterr()
    assert json.loads(err)["tag"] == "worker-3"
