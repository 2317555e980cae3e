"""Monitor fixtures: one real Prometheus for the session (it scrapes each test's router)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.prometheus import PrometheusServer, require_prometheus


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """Debian's Prometheus, started once per session in a temp dir (skips if missing)."""
    server = PrometheusServer.start(require_prometheus())
    yield server
    server.stop()
