"""Alembic environment: runs migrations on the connection handed over by ``_migrate``.

There is no alembic.ini and no URL here on purpose: the store opens the engine, starts a
transaction and passes its connection in ``config.attributes["connection"]``, so migrations
run inside that transaction (all or nothing, on SQLite too) under the store's own lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from sluicegate.store._schema import VERSION_TABLE, metadata


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("sluicegate migrations run only through sluicegate.store.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
