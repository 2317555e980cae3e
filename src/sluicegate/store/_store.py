"""``Store``: one database, its repositories, and transactions across them.

Usage::

    store = Store.open(state_dir)            # or a file path, or "postgresql://..."
    store.services.put("shop", spec)          # each call: its own short transaction
    with store.transaction() as tx:           # several calls, all or nothing
        dep = tx.deployments.update(dep.id, dep.version, phase="shift")
        tx.events.append("deployment.phase", dep.id, "shifting traffic", actor="alice")
    store.close()

Opening migrates the schema to the newest revision. A ``Store`` is safe to share between
threads (the engine pools connections); a ``Transaction`` belongs to one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine

from sluicegate._private import private_file
from sluicegate.clock import Clock, SystemClock

from ._base import Db
from ._engine import begin, make_engine, to_url
from ._migrate import upgrade
from .alarms import AlarmRepository
from .commands import CommandRepository
from .deployments import DeploymentRepository
from .events import EventRepository
from .exposures import ExposureRepository
from .flags import FlagRepository, FlagRolloutRepository
from .heartbeat import HeartbeatRepository
from .metric_rollups import MetricRollupRepository
from .replicas import ReplicaRepository
from .router_state import RouterStateRepository
from .services import RevisionRepository, ServiceRepository
from .tokens import TokenRepository
from .webhooks import DeliveryRepository, WebhookRepository

__all__ = ["Store", "Transaction"]

log = logging.getLogger(__name__)


class _Repositories:
    """The repositories over one source of transactions."""

    def __init__(self, db: Db, clock: Clock) -> None:
        self.services = ServiceRepository(db, clock)
        self.revisions = RevisionRepository(db, clock)
        self.deployments = DeploymentRepository(db, clock)
        self.commands = CommandRepository(db, clock)
        self.heartbeat = HeartbeatRepository(db, clock)
        self.events = EventRepository(db, clock)
        self.replicas = ReplicaRepository(db, clock)
        self.tokens = TokenRepository(db, clock)
        self.router_state = RouterStateRepository(db, clock)
        self.alarms = AlarmRepository(db, clock)
        self.metric_rollups = MetricRollupRepository(db, clock)
        self.flag_exposures = ExposureRepository(db, clock)
        self.flags = FlagRepository(db, clock)
        self.flag_rollouts = FlagRolloutRepository(db, clock)
        self.webhooks = WebhookRepository(db, clock)
        self.webhook_deliveries = DeliveryRepository(db, clock)


class _EngineDb:
    def __init__(self, engine: Engine, committed: Callable[[], None]) -> None:
        self._engine = engine
        self._committed = committed

    def read(self) -> AbstractContextManager[Connection]:
        return begin(self._engine, write=False)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with begin(self._engine, write=True) as conn:
            yield conn
        self._committed()


class _ConnectionDb:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def read(self) -> AbstractContextManager[Connection]:
        return nullcontext(self._conn)

    def write(self) -> AbstractContextManager[Connection]:
        return nullcontext(self._conn)


class Transaction(_Repositories):
    """The same repositories, all running in one transaction (see :meth:`Store.transaction`)."""

    def __init__(self, conn: Connection, clock: Clock) -> None:
        super().__init__(_ConnectionDb(conn), clock)
        self.connection = conn


class Store(_Repositories):
    """The control plane's durable state. Create with :meth:`open`, end with :meth:`close`."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        super().__init__(_EngineDb(engine, self._committed), clock)
        self.engine = engine
        self.clock = clock
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after each write this process commits (in the committing thread;
        keep it short). Changes made by other processes are not seen: poll for those.
        Returns a function that removes the listener."""
        self._on_commit.append(listener)
        return lambda: self._on_commit.remove(listener)

    def _committed(self) -> None:
        for listener in list(self._on_commit):
            try:
                listener()
            except Exception:  # a listener's trouble must not fail the committed write
                log.exception("store commit listener failed")

    @classmethod
    def open(cls, url_or_path: str | Path, *, clock: Clock | None = None) -> Store:
        """Open (creating if needed) and migrate the database.

        ``url_or_path``: a SQLAlchemy URL (``postgresql://`` means psycopg 3), a SQLite file
        path, or a directory (the state dir; the file is ``sluicegate.db`` in it).
        Raises :class:`~sluicegate.errors.TransientError` when the database cannot be
        reached, :class:`~sluicegate.errors.ConflictError` when its schema is newer than
        this Sluicegate.
        """
        url = to_url(url_or_path)
        engine = make_engine(url)
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        if url.get_backend_name() == "sqlite" and url.database:
            for suffix in ("", "-wal", "-shm"):  # token hashes, webhook secrets: owner only
                private_file(Path(url.database + suffix))
        return cls(engine, clock or SystemClock())

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Repositories bound to one write transaction: committed when the block ends,
        rolled back when it raises.

        On SQLite it holds the write lock throughout, so inside the block use ``tx.*`` only:
        a ``store.*`` call there would wait for that lock (and time out).
        """
        with begin(self.engine, write=True) as conn:
            yield Transaction(conn, self.clock)
        self._committed()

    def close(self) -> None:
        """Close every pooled connection. The store must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
