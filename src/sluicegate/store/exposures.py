"""Flag exposures: how often agents evaluated each flag's variants, summed per environment,
flag, variant and minute. Agents report deltas; a report adds to its minute's rows. Read by
``GET /v1/flags/{env}/exposures``, by the ``exposures`` alarm source, pruned with the metric
rollups after their retention (14 days)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ._base import Repository
from ._records import ExposureTotal
from ._schema import flag_exposures

__all__ = ["ExposureRepository"]

MINUTE = 60


class ExposureRepository(Repository):
    def add(self, env: str, minute: int, counts: Iterable[tuple[str, str, int]]) -> int:
        """Add ``(flag, variant, count)``s to ``env``'s ``minute`` (floored to its start);
        zero counts are skipped, a repeated pair within ``counts`` adds up. Returns the
        number of rows touched."""
        start = minute // MINUTE * MINUTE
        summed: dict[tuple[str, str], int] = {}
        for flag, variant, n in counts:
            if n < 0:
                raise ValueError(f"exposure count of {flag}/{variant} is negative ({n})")
            if n:
                summed[(flag, variant)] = summed.get((flag, variant), 0) + n
        if not summed:
            return 0
        now = self._clock.now()
        with self._db.write() as conn:
            for (flag, variant), n in sorted(summed.items()):  # one lock order for all writers
                _increment(conn, {"env": env, "flag": flag, "variant": variant,
                                  "minute": start, "count": n, "updated_at": now})
        return len(summed)

    def totals(self, env: str, since: int, flag: str | None = None) -> list[ExposureTotal]:
        """Per flag x variant of ``env``: the count over the minutes from the one holding
        ``since`` on, and the newest of those minutes; sorted by flag, then variant."""
        t = flag_exposures.c
        query = (sa.select(t.flag, t.variant, sa.func.sum(t.count).label("n"),
                           sa.func.max(t.minute).label("last"))
                 .where(t.env == env, t.minute >= since // MINUTE * MINUTE)
                 .group_by(t.flag, t.variant).order_by(t.flag, t.variant))
        if flag is not None:
            query = query.where(t.flag == flag)
        with self._db.read() as conn:
            return [ExposureTotal(r.flag, r.variant, int(r.n), int(r.last))
                    for r in conn.execute(query)]

    def minutes(self, env: str, start: int, end: int, flag: str | None = None,
                variant: str | None = None) -> dict[int, int]:
        """Minute start -> count in [start, end), summed over the flags and variants not
        pinned by ``flag`` / ``variant``. A minute is present when ``env`` (``flag``, when
        given) has a row in it: a variant nobody got while the flag was evaluated counts 0
        there (so an error share reads 0, not missing); other minutes are absent."""
        t = flag_exposures.c
        counted = t.count if variant is None else sa.case((t.variant == variant, t.count),
                                                          else_=0)
        query = (sa.select(t.minute, sa.func.sum(counted).label("n"))
                 .where(t.env == env, t.minute >= start, t.minute < end)
                 .group_by(t.minute).order_by(t.minute))
        if flag is not None:
            query = query.where(t.flag == flag)
        with self._db.read() as conn:
            return {int(r.minute): int(r.n) for r in conn.execute(query)}

    def delete_before(self, minute: int) -> int:
        """Drop minutes older than ``minute``; returns how many rows went."""
        with self._db.write() as conn:
            result = conn.execute(sa.delete(flag_exposures).where(
                flag_exposures.c.minute < minute))
            return int(result.rowcount or 0)


def _increment(conn: Connection, values: dict[str, Any]) -> None:
    """INSERT the row, or add its count to the stored one (atomic on both backends)."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(flag_exposures)
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(flag_exposures)
    else:
        raise NotImplementedError(f"no upsert for the {conn.dialect.name} dialect")
    stmt = stmt.values(values)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["env", "flag", "variant", "minute"],
        set_={"count": flag_exposures.c.count + stmt.excluded.count,
              "updated_at": stmt.excluded.updated_at}))
