"""Flag exposures: how often agents evaluated each flag's variants, summed per environment,
flag, variant and minute. Agents report deltas; a report adds to its minute's rows. Read by
``GET /v1/flags/{env}/exposures``, by the ``exposures`` alarm source, pruned with the metric
rollups after their retention (14 days).

A report may carry its agent process (``instance``) and a sequence number: it is stored
only when the number is above the newest stored from that instance, in the same
transaction, so a report resent because its answer was lost is not counted twice."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ._base import Repository, dialect_insert
from ._records import ExposureReporter, ExposureTotal
from ._schema import flag_exposure_reporters, flag_exposures

__all__ = ["ExposureRepository"]

MINUTE = 60


class ExposureRepository(Repository):
    def add(self, env: str, minute: int, counts: Iterable[tuple[str, str, int]]) -> int:
        """Add ``(flag, variant, count)``s to ``env``'s ``minute`` (floored to its start);
        zero counts are skipped, a repeated pair within ``counts`` adds up. Returns the
        number of rows touched."""
        summed = _summed(counts)
        with self._db.write() as conn:
            return self._add(conn, env, minute, summed)

    def add_report(
        self,
        env: str,
        minute: int,
        counts: Iterable[tuple[str, str, int]],
        *,
        agent: str,
        instance: str,
        seq: int,
    ) -> bool:
        """:meth:`add` once per report: True when stored, False when the instance already
        had a report numbered ``seq`` or higher stored (then nothing changes)."""
        summed = _summed(counts)
        now = self._clock.now()
        r = flag_exposure_reporters
        with self._db.write() as conn:
            stmt = dialect_insert(conn, r).values(
                env=env, agent=agent, instance=instance, last_seq=seq, first_seen=now, last_seen=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["env", "agent", "instance"],
                set_={"last_seq": stmt.excluded.last_seq, "last_seen": stmt.excluded.last_seen},
                where=r.c.last_seq < stmt.excluded.last_seq,
            ).returning(r.c.last_seq)
            if conn.execute(stmt).first() is None:  # no row: the update's WHERE said no
                return False
            self._add(conn, env, minute, summed)
            return True

    def _add(
        self, conn: Connection, env: str, minute: int, summed: dict[tuple[str, str], int]
    ) -> int:
        start = minute // MINUTE * MINUTE
        now = self._clock.now()
        for (flag, variant), n in sorted(summed.items()):  # one lock order for all writers
            stmt = dialect_insert(conn, flag_exposures).values(
                env=env, flag=flag, variant=variant, minute=start, count=n, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["env", "flag", "variant", "minute"],
                    set_={
                        "count": flag_exposures.c.count + stmt.excluded.count,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )
        return len(summed)

    def reporters(self, env: str, since: float) -> list[ExposureReporter]:
        """The agent processes that reported for ``env`` at ``since`` or later, newest
        first."""
        r = flag_exposure_reporters
        query = (
            sa.select(r)
            .where(r.c.env == env, r.c.last_seen >= since)
            .order_by(r.c.last_seen.desc(), r.c.agent, r.c.instance)
        )
        with self._db.read() as conn:
            return [
                ExposureReporter(
                    row.agent, row.instance, int(row.last_seq), row.first_seen, row.last_seen
                )
                for row in conn.execute(query)
            ]

    def totals(self, env: str, since: int, flag: str | None = None) -> list[ExposureTotal]:
        """Per flag x variant of ``env``: the count over the minutes from the one holding
        ``since`` on, and the newest of those minutes; sorted by flag, then variant."""
        t = flag_exposures.c
        query = (
            sa.select(
                t.flag,
                t.variant,
                sa.func.sum(t.count).label("n"),
                sa.func.max(t.minute).label("last"),
            )
            .where(t.env == env, t.minute >= since // MINUTE * MINUTE)
            .group_by(t.flag, t.variant)
            .order_by(t.flag, t.variant)
        )
        if flag is not None:
            query = query.where(t.flag == flag)
        with self._db.read() as conn:
            return [
                ExposureTotal(r.flag, r.variant, int(r.n), int(r.last)) for r in conn.execute(query)
            ]

    def minutes(
        self, env: str, start: int, end: int, flag: str | None = None, variant: str | None = None
    ) -> dict[int, int]:
        """Minute start -> count in [start, end), summed over the flags and variants not
        pinned by ``flag`` / ``variant``. A minute is present when ``env`` (``flag``, when
        given) has a row in it: a variant nobody got while the flag was evaluated counts 0
        there (so an error share reads 0, not missing); other minutes are absent."""
        t = flag_exposures.c
        counted = t.count if variant is None else sa.case((t.variant == variant, t.count), else_=0)
        query = (
            sa.select(t.minute, sa.func.sum(counted).label("n"))
            .where(t.env == env, t.minute >= start, t.minute < end)
            .group_by(t.minute)
            .order_by(t.minute)
        )
        if flag is not None:
            query = query.where(t.flag == flag)
        with self._db.read() as conn:
            return {int(r.minute): int(r.n) for r in conn.execute(query)}

    def delete_before(self, minute: int) -> int:
        """Drop minutes older than ``minute`` (and agents not heard from since); returns how
        many exposure rows went."""
        with self._db.write() as conn:
            result = conn.execute(sa.delete(flag_exposures).where(flag_exposures.c.minute < minute))
            conn.execute(
                sa.delete(flag_exposure_reporters).where(
                    flag_exposure_reporters.c.last_seen < minute
                )
            )
            return int(result.rowcount or 0)


def _summed(counts: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    summed: dict[tuple[str, str], int] = {}
    for flag, variant, n in counts:
        if n < 0:
            raise ValueError(f"exposure count of {flag}/{variant} is negative ({n})")
        if n:
            summed[(flag, variant)] = summed.get((flag, variant), 0) + n
    return summed
