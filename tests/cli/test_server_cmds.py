"""``sluice server``'s options become one frozen ServerSettings, built from the parameters as
given (durations in seconds, the token read from its variable, the global log options)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

import sluicegate.server
from sluicegate._logging import LogSettings
from sluicegate.cli._main import cli
from sluicegate.server import ServerSettings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServerSettings]:
    """What ``run_server`` would have been given (it is not run)."""
    seen: list[ServerSettings] = []
    monkeypatch.setattr(sluicegate.server, "run_server", seen.append)
    return seen


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_every_option_reaches_the_settings_and_the_log_options_too(
    started: list[ServerSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "prom-secret-token")
    code, out = invoke(
        "--log-level",
        "debug",
        "--log-json",
        "server",
        "--port",
        "7171",
        "--state-dir",
        str(tmp_path),
        "--no-default-guards",
        "--push-window",
        "30m",
        "--push-max-series",
        "50",
        "--prometheus-url",
        "http://127.0.0.1:9090",
        "--prometheus-token-env",
        "PROM_TOKEN",
        "--webhook-timeout",
        "2.5",
        "--webhook-attempts",
        "3",
        "--router-flags-env",
        "staging",
        "--give-up-after",
        "2m",
        "--allow-private-webhooks",
    )
    assert code == 0, out
    [settings] = started
    assert settings == ServerSettings(
        state_dir=tmp_path,
        port=7171,
        database=str(tmp_path / "sluicegate.db"),
        default_guards=False,
        push_window=1800,
        push_max_series=50,
        prometheus_url="http://127.0.0.1:9090",
        prometheus_token="prom-secret-token",
        webhook_timeout=2.5,
        webhook_attempts=3,
        router_flags_env="staging",
        failure_bound=120.0,
        allow_private_webhooks=True,
        log=LogSettings("debug", json=True),
    )
    assert "prom-secret-token" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_the_defaults(started: list[ServerSettings]) -> None:
    assert invoke("server")[0] == 0
    [settings] = started
    assert settings == ServerSettings(Path(".sluicegate"))
    assert (settings.database, settings.push_window, settings.failure_bound) == (
        ".sluicegate/sluicegate.db",
        3 * 3600,
        60.0,
    )
    assert settings.default_guards and settings.log == LogSettings()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push-window", "10s"], "Invalid value for '--push-window': at least 1m"),
        (["--push-window", "soon"], "Invalid value for '--push-window': "),
        (["--give-up-after", "2d"], "Invalid value for '--give-up-after': from 1s to 1d"),
        (["--prometheus-url", "prom:9090"], "'prom:9090' is not an http:// or https:// URL"),
        (
            ["--prometheus-token-env", "SLUICE_TEST_UNSET"],
            "environment variable SLUICE_TEST_UNSET is not set or empty",
        ),
    ],
)
def test_a_bad_option_is_refused_naming_it(
    started: list[ServerSettings], args: list[str], message: str
) -> None:
    code, out = invoke("server", *args)
    assert code == 2 and message in out, out
    assert started == []
