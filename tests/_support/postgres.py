"""A throwaway PostgreSQL server for tests: Debian's binaries, a temp dir, a free port.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl start`` as the ``postgres`` OS user
when the tests run as root (PostgreSQL refuses to run as root), with the data directory and
the unix socket inside one temp dir; it listens on 127.0.0.1 only, with trust auth and
durability switched off (fsync, synchronous_commit) because the data dies with the test run.
``create_database()`` gives each test a fresh database on the one server.

Binaries are looked up in ``$SLUICEGATE_PG_BIN``, then ``/usr/lib/postgresql/<newest>/bin``,
then ``PATH``; ``require_postgres_bin()`` skips (or, with ``SLUICEGATE_REQUIRE_ALL=1``, fails)
when they are missing, like ``require_binary``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests._support import free_port

__all__ = ["PostgresServer", "require_path", "require_postgres_bin"]

_TOOLS = ("initdb", "pg_ctl", "postgres")


def require_path(path: Path | None, what: str, package: str) -> Path:
    """``path`` when it exists; else skip the test (fail with ``SLUICEGATE_REQUIRE_ALL=1``)."""
    if path is not None and path.exists():
        return path
    reason = f"{what} is not installed (apt-get install {package})"
    if os.environ.get("SLUICEGATE_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason}; SLUICEGATE_REQUIRE_ALL=1 requires it", pytrace=False)
    pytest.skip(reason)


def _find_bin_dir() -> Path | None:
    candidates: list[Path] = []
    if os.environ.get("SLUICEGATE_PG_BIN"):
        candidates.append(Path(os.environ["SLUICEGATE_PG_BIN"]))

    def version(p: Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).parent)
    for directory in candidates:
        if all((directory / tool).exists() for tool in _TOOLS):
            return directory
    return None


def require_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres (skip/fail as ``require_path``)."""
    return require_path(_find_bin_dir(), "PostgreSQL server binaries", "postgresql")


class PostgresServer:
    """One running PostgreSQL cluster; ``stop()`` shuts it down and removes its files."""

    def __init__(self, bin_dir: Path, root: Path, port: int, as_user: list[str]) -> None:
        self.bin_dir, self.root, self.port, self._as_user = bin_dir, root, port, as_user
        self._names = itertools.count(1)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                require_path(
                    None, "the postgres OS user (PostgreSQL will not run as root)", "postgresql"
                )
                raise
            os.chown(root, pw.pw_uid, pw.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(bin_dir, root, free_port(), as_user)
        try:
            server._run(
                "initdb", "-D", str(server.data_dir), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            options = (
                f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            server._run(
                "pg_ctl", "-D", str(server.data_dir), "-o", options, "-l", str(root / "log"),
                "-w", "-t", "60", "start",
            )  # fmt: skip
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as_user, str(self.bin_dir / tool), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{tail}"
            )

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def truncate(self, database: str, tables: list[str]) -> None:
        """Empty ``tables`` (and reset their sequences); TRUNCATE fires no row triggers."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
