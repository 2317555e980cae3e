"""Hooks run for real and report, never raise."""

from __future__ import annotations

import asyncio
import sys

from sluicegate.deploy.hooks import run_command_hook, run_http_hook
from tests.conftest import AppFactory


def test_http_hook_passes_on_the_expected_status_and_fails_otherwise(
    app_factory: AppFactory,
) -> None:
    app = app_factory()
    ok = asyncio.run(run_http_hook(f"{app.url}/healthz", 200, 2))
    assert ok.ok and "answered 200" in ok.detail
    bad = asyncio.run(run_http_hook(f"{app.url}/status/500", 200, 2))
    assert not bad.ok and "answered 500, expected 200" in bad.detail


def test_http_hook_against_nothing_fails_with_the_reason() -> None:
    result = asyncio.run(run_http_hook("http://127.0.0.1:9/healthz", 200, 1))
    assert not result.ok and "failed" in result.detail


def test_command_hook_reports_exit_status_and_output_tail() -> None:
    ok = asyncio.run(run_command_hook([sys.executable, "-c", "print('smoke ok')"], {}, 10))
    assert ok.ok and ok.detail.endswith("exited 0: smoke ok")
    env = {"SLUICE_REVISION": "v2"}
    code = "import os,sys; print('bad', os.environ['SLUICE_REVISION']); sys.exit(3)"
    bad = asyncio.run(run_command_hook([sys.executable, "-c", code], env, 10))
    assert not bad.ok and bad.detail.endswith("exited 3: bad v2")


def test_command_hook_is_killed_after_its_timeout() -> None:
    result = asyncio.run(
        run_command_hook([sys.executable, "-c", "import time; time.sleep(30)"], {}, 0.5)
    )
    assert not result.ok and "timed out after 0.5s" in result.detail
    assert result.seconds < 5


def test_missing_command_is_a_failed_hook() -> None:
    result = asyncio.run(run_command_hook(["/nonexistent/hook"], {}, 1))
    assert not result.ok and "cannot run" in result.detail
