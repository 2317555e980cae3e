"""Shared fixtures: sample apps and routers as real processes, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._support import AppProcess, RouterProcess, start_app, start_router
from tests._support.podman import PodmanService, build_app_images, podman_service
from tests._support.postgres import PostgresServer, require_postgres_bin

# No process started by the run may outlive it (see the module's docstring); pytester runs
# pytest inside a test (the guard's own tests).
pytest_plugins = ("tests._support.leakguard", "pytester")

AppFactory = Callable[..., AppProcess]
RouterFactory = Callable[..., RouterProcess]


@pytest.fixture
def app_factory() -> Iterator[AppFactory]:
    """``app_factory(port=None, version="v1", name=None, **kw) -> AppProcess``."""
    started: list[AppProcess] = []

    def make(*args: Any, **kwargs: Any) -> AppProcess:
        app = start_app(*args, **kwargs)
        started.append(app)
        return app

    yield make
    for app in reversed(started):
        app.stop()


@pytest.fixture
def router_factory() -> Iterator[RouterFactory]:
    """``router_factory(config, workers=1, insecure=False, token="test-token", **kw)``.

    Each router's stderr is printed at teardown; pytest shows it for failed tests.
    """
    started: list[RouterProcess] = []

    def make(*args: Any, **kwargs: Any) -> RouterProcess:
        router = start_router(*args, **kwargs)
        started.append(router)
        return router

    yield make
    for router in reversed(started):
        router.stop()
        logs = router.logs()
        if logs:
            print(f"--- router {router.admin_url} stderr ---\n{logs[-20000:]}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL, started once per session in a temp dir (skips if missing)."""
    server = PostgresServer.start(require_postgres_bin())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    """A Podman API service of the session's own, with the test app's images v1 and v2
    built once (``tests._support.podman``; skips without podman)."""
    root = tmp_path_factory.mktemp("podman")
    with podman_service(root) as service:
        build_app_images(service, root, ("v1", "v2"))
        yield service
