"""Store fixtures: every repository test runs against a SQLite file and a real PostgreSQL.

PostgreSQL is started once per session (``pg_server``). ``db_url`` is a brand-new empty
database (for migration tests); ``store_url``/``store`` reuse one migrated PostgreSQL
database whose tables are emptied before each test, which is ten times quicker than
creating and migrating a database per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluicegate.clock import ManualClock
from sluicegate.store import Store
from sluicegate.store._schema import metadata
from tests._support.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a state dir for SQLite, a new database on PostgreSQL."""
    if request.param == "sqlite":
        state = tmp_path / "state"
        state.mkdir()
        return str(state)
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture(scope="session")
def pg_shared_url(pg_server: PostgresServer) -> str:
    """One migrated database for the repository tests of the whole session."""
    url = pg_server.create_database()
    Store.open(url).close()
    return url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite state dir, or the shared PostgreSQL
    database with every table truncated."""
    if request.param == "sqlite":
        state = tmp_path / "state"
        state.mkdir()
        return str(state)
    url: str = request.getfixturevalue("pg_shared_url")
    server: PostgresServer = request.getfixturevalue("pg_server")
    server.truncate(url.rsplit("/", 1)[1], [t.name for t in metadata.sorted_tables])
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(store_url: str, clock: ManualClock) -> Iterator[Store]:
    with Store.open(store_url, clock=clock) as opened:
        yield opened
