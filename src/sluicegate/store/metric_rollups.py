"""Metric rollups: one row per series and minute, so metric history outlives the in-memory
windows (the router's 5 min, the push store's 3 h). Written once a minute by the monitor,
kept for a retention period, read by ``GET /v1/metrics/query``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ._base import Repository, upsert
from ._records import MetricRollup
from ._schema import metric_rollups

__all__ = ["MetricRollupRepository", "series_id"]


def series_id(dimensions: Mapping[str, str]) -> str:
    """A series' key within its name: the hash of its dimensions as canonical JSON."""
    text = json.dumps(dict(dimensions), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class MetricRollupRepository(Repository):
    def write(self, rows: Sequence[MetricRollup]) -> None:
        """Store minutes (a minute written again is replaced: re-running is harmless)."""
        with self._db.write() as conn:
            for r in rows:
                upsert(
                    conn,
                    metric_rollups,
                    {
                        "source": r.source,
                        "name": r.name,
                        "series": series_id(r.dimensions),
                        "minute": r.minute,
                        "dimensions": dict(r.dimensions),
                        "count": r.count,
                        "total": r.total,
                        "minimum": r.minimum,
                        "maximum": r.maximum,
                        "hist": {str(k): v for k, v in r.hist.items()},
                    },
                )

    def query(
        self, source: str, name: str, dimensions: Mapping[str, str], start: int, end: int
    ) -> list[MetricRollup]:
        """The series' minutes in [start, end), oldest first."""
        query = (
            sa.select(metric_rollups)
            .where(
                metric_rollups.c.source == source,
                metric_rollups.c.name == name,
                metric_rollups.c.series == series_id(dimensions),
                metric_rollups.c.minute >= start,
                metric_rollups.c.minute < end,
            )
            .order_by(metric_rollups.c.minute)
        )
        with self._db.read() as conn:
            return [_rollup(r) for r in conn.execute(query).mappings()]

    def delete_before(self, minute: int) -> int:
        """Drop minutes older than ``minute``; returns how many rows went."""
        with self._db.write() as conn:
            result = conn.execute(sa.delete(metric_rollups).where(metric_rollups.c.minute < minute))
            return int(result.rowcount or 0)


def _rollup(row: Any) -> MetricRollup:
    return MetricRollup(
        source=row["source"],
        name=row["name"],
        dimensions=row["dimensions"],
        minute=int(row["minute"]),
        count=int(row["count"]),
        total=row["total"],
        minimum=row["minimum"],
        maximum=row["maximum"],
        hist={int(k): int(v) for k, v in row["hist"].items()},
    )
