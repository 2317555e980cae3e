"""Migrations: a fresh database reaches head, re-opening is a no-op, schema == _schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sluicegate.errors import ConflictError, TransientError
from sluicegate.store import Store
from sluicegate.store._engine import to_url
from sluicegate.store._migrate import current_revision, head_revision
from sluicegate.store._schema import VERSION_TABLE, metadata
from tests._support import free_port

TABLES = {
    "alarms",
    "services",
    "revisions",
    "deployments",
    "events",
    "metric_rollups",
    "replicas",
    "tokens",
    "router_state",
    "flag_environments",
    "flag_set_versions",
    "flag_rollouts",
    "flag_exposures",
    "flag_exposure_reporters",
    "webhooks",
    "webhook_deliveries",
    "webhook_cursor",
    "deployment_commands",
    "server_heartbeat",
    VERSION_TABLE,
}


def test_fresh_database_is_migrated_to_head(store: Store) -> None:
    assert set(sa.inspect(store.engine).get_table_names()) == TABLES
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()


def test_reopen_is_idempotent_and_keeps_data(db_url: str) -> None:
    with Store.open(db_url) as first:
        first.services.put("shop", {"replicas": 2})
    for _ in range(2):
        with Store.open(db_url) as again:
            assert again.services.get("shop").spec == {"replicas": 2}
            with again.engine.connect() as conn:
                assert current_revision(conn) == head_revision()
                rows = conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar()
            assert rows == 1


def test_migrated_schema_matches_the_schema_module(store: Store) -> None:
    """The migrations and ``_schema`` describe the same tables, columns, indexes."""
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_database_from_a_newer_sluicegate_is_refused(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    with pytest.raises(ConflictError, match=r"9999_future.*upgrade Sluicegate"):
        Store.open(db_url)


def test_a_directory_means_sluicegate_db_inside_it(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.services.put("a", {})
    assert (tmp_path / "sluicegate.db").is_file()


def test_a_file_path_in_a_missing_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "my.db"
    with Store.open(path) as store:
        assert store.dialect == "sqlite"
    assert path.is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_urls_use_psycopg3(scheme: str) -> None:
    url = to_url(f"{scheme}://u:p@db.example:5433/sluice")
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database) == ("db.example", 5433, "sluice")


def test_unreachable_postgresql_is_a_transient_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    with pytest.raises(TransientError, match="database unavailable"):
        Store.open(url)
