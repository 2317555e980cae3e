"""Flag exposures as alarm datapoints (a ``DatapointSource`` named ``exposures``).

Metric ``evaluations``, dimensions ``env`` (required), ``flag`` and ``variant`` (optional:
left out, they are summed; a failed evaluation's variant is ``error:CODE``). The counts come
from the per-minute rows agents' reports fill (``store.flag_exposures``): each minute with
a row is ``StatSet.events(n)``, so Sum is the number of evaluations. As with the router's
counters, a minute in which the flag (the environment, without ``flag``) was evaluated at
all is present, with Sum 0 for a variant nobody got (an error share reads 0), and a minute
without any evaluation is missing data. Periods are whole minutes. Agents report every
``--report-interval`` (10 s), so the minute that just closed may still grow for that long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sluicegate.errors import Problem, SpecError
from sluicegate.monitor.alarms import Datapoint, StatSet, aggregate
from sluicegate.spec import MetricSpec, parse_statistic
from sluicegate.spec._exposure_metric import exposure_statistic_problem
from sluicegate.store import Store

__all__ = ["ExposureDatapoints", "exposure_datapoints"]


def exposure_datapoints(
    minutes: Mapping[int, int], statistic: str, *, end: int, period: int, count: int
) -> list[Datapoint]:
    """Datapoints from minute start -> evaluations (pure); ``period`` a multiple of 60."""
    stat, percentile = parse_statistic(statistic)
    why = exposure_statistic_problem(period, percentile is not None)
    if why is not None:
        raise SpecError([Problem("period" if period % 60 else "statistic", why)])
    stats = {minute: StatSet.events(n) for minute, n in minutes.items()}
    return aggregate(stat, stats, end=end, period=period, count=count)


class ExposureDatapoints:
    """``DatapointSource`` over the store's exposure minutes (read in a worker thread, so a
    slow database never stalls the server's event loop)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        dims = metric.dimensions  # MetricSpec checked the name and the dimensions
        if period % 60 == 0:
            minutes = await asyncio.to_thread(
                self.store.flag_exposures.minutes,
                dims["env"],
                end - period * count,
                end,
                dims.get("flag"),
                dims.get("variant"),
            )
        else:
            minutes = {}  # exposure_datapoints refuses the period
        return exposure_datapoints(minutes, statistic, end=end, period=period, count=count)
