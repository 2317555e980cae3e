"""Engines and connections: where the database is, how SQLite is tuned, how errors translate.

``make_engine`` turns what a user typed (``--database``, a state dir, a file path) into an
engine. SQLite gets WAL mode (readers never block the writer), a busy timeout (a writer waits
for another instead of failing), foreign keys on, and *BEGIN IMMEDIATE* for write
transactions: a transaction that reads and then writes takes the write lock up front, so two
writers queue instead of one failing with "database is locked" half-way.

``translate`` is the boundary where SQLAlchemy/driver errors become Sluicegate errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from sluicegate.errors import ConflictError, SluicegateError, TransientError

__all__ = ["DEFAULT_FILENAME", "begin", "make_engine", "to_url", "translate"]

#: The SQLite file name used when ``Store.open`` is given a directory (the state dir).
DEFAULT_FILENAME = "sluicegate.db"
#: How long a SQLite writer waits for another writer before giving up.
BUSY_TIMEOUT_S = 30.0
_WRITE = "sluicegate_write"


def to_url(url_or_path: str | Path) -> sa.URL:
    """A SQLAlchemy URL for a URL, a SQLite file path, or a directory (→ ``sluicegate.db`` in it).

    ``postgresql://`` and ``postgres://`` mean psycopg 3; other URLs pass through unchanged.
    """
    text = str(url_or_path)
    if "://" not in text:
        path = Path(text).expanduser()
        if path.is_dir():
            path = path / DEFAULT_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        return sa.URL.create("sqlite+pysqlite", database=str(path.resolve()))
    try:
        url = sa.make_url(text)
    except exc.ArgumentError as err:
        raise SluicegateError(f"not a database URL: {text!r} ({err})") from err
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(url: sa.URL) -> Engine:
    """An engine for ``url``; for SQLite, with the pragmas and locking described above."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN, instead of pysqlite's own guess.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def begin(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection in a transaction: committed when the block ends, rolled back on error."""
    with translate(), engine.connect() as raw:
        conn = raw.execution_options(**{_WRITE: write})
        with conn.begin():
            yield conn


@contextmanager
def translate() -> Iterator[None]:
    """Re-raise database errors as Sluicegate errors (``raise ... from``)."""
    try:
        yield
    except exc.IntegrityError as err:
        raise ConflictError(f"the change contradicts stored state: {_orig(err)}") from err
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as err:
        raise TransientError(f"database unavailable: {_orig(err)}") from err
    except exc.SQLAlchemyError as err:
        raise SluicegateError(f"database error: {_orig(err)}") from err


def _orig(err: exc.SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).strip().splitlines()[0]
