"""PromQL as an alarm's metric: a :class:`~sluicegate.monitor.sources.DatapointSource` over
Prometheus's HTTP API (``/api/v1/query_range``).

What a datapoint means. The alarm's periods end at ``end`` (exclusive) and each is
``period`` seconds long; the datapoint of a period is **the query evaluated at the period's
end**, stamped with the period's start. So with a 60 s period, ``rate(x[1m])`` is the rate
over exactly that period, as a PromQL user expects (a range selector looks back from the
evaluation time). One ``query_range`` call evaluates all periods: ``start`` = the first
period's end, ``end`` = ``end``, ``step`` = ``period``.

- The query must give **one series**: an alarm compares one number per period. More series
  (``rate(x[1m])`` with several label sets) is an error that says to aggregate (``sum``,
  ``max``...); no series at a step, NaN (``0/0``) and ±Inf are *missing*.
- A present value counts as **one sample** (PromQL aggregated already; see
  :mod:`sluicegate.spec.alarm` for what that means for ``statistic`` and ``min_samples``).
- Prometheus refuses more than 11,000 points per series in one call; longer ranges are
  split into several calls (concurrently) and joined.
- Errors: unreachable, timed out or 5xx -> :class:`PrometheusUnavailableError` (transient);
  a query Prometheus rejects (400/422) -> :class:`PrometheusQueryError` quoting its message;
  401/403 -> :class:`~sluicegate.errors.AuthError`.

The parsing and range planning are pure functions (tested with plain values); the class
only does the HTTP calls. A source belongs to one event loop (its connection pool does).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from sluicegate.errors import AuthError, Problem, SluicegateError, SpecError, TransientError
from sluicegate.monitor.alarms import Datapoint, period_starts
from sluicegate.spec import PROMETHEUS_STATISTICS, MetricSpec

__all__ = [
    "MAX_POINTS",
    "Chunk",
    "PrometheusQueryError",
    "PrometheusSource",
    "PrometheusUnavailableError",
    "datapoints_from_series",
    "plan_chunks",
]

#: Prometheus's limit on points per series in one query_range call.
MAX_POINTS = 11_000
_SHOWN_SERIES = 3


class PrometheusUnavailableError(TransientError):
    """Prometheus did not answer (down, unreachable, timed out, overloaded): retry later."""


class PrometheusQueryError(SpecError):
    """Prometheus refused the query, or its result is not one series; the user must fix it."""

    def __init__(self, query: str, message: str) -> None:
        self.query = query
        super().__init__([Problem("query", message)], source=f"prometheus query {query!r}")


@dataclass(frozen=True)
class Chunk:
    """One query_range call: evaluations at ``start``, ``start + step`` ... ``end``."""

    start: int
    end: int
    step: int

    @property
    def points(self) -> int:
        return (self.end - self.start) // self.step + 1


def plan_chunks(end: int, period: int, count: int, max_points: int = MAX_POINTS) -> list[Chunk]:
    """The calls that evaluate a query at the ends of the ``count`` periods ending at ``end``,
    each at most ``max_points`` evaluations, oldest first."""
    if period < 1 or count < 1 or max_points < 1:
        raise ValueError("period, count and max_points must be at least 1")
    ends = [start + period for start in period_starts(end, period, count)]
    return [
        Chunk(ends[i], ends[min(i + max_points, count) - 1], period)
        for i in range(0, count, max_points)
    ]


def datapoints_from_series(
    query: str, series: Sequence[Mapping[str, Any]], *, end: int, period: int, count: int
) -> list[Datapoint]:
    """The ``count`` datapoints from query_range ``result`` entries (``{"metric": labels,
    "values": [[t, "v"], ...]}``, possibly from several chunks); a value evaluated at a period's
    end belongs to that period. Raises :class:`PrometheusQueryError` on more than one series."""
    labelsets = {_labels(s.get("metric") or {}) for s in series}
    if len(labelsets) > 1:
        shown = ", ".join(sorted(labelsets)[:_SHOWN_SERIES])
        more = "" if len(labelsets) <= _SHOWN_SERIES else ", ..."
        raise PrometheusQueryError(
            query,
            f"the query returned {len(labelsets)} series"
            f" ({shown}{more}) but an alarm needs one number per"
            " period: aggregate them in the query, e.g. sum(...),"
            " max(...) or sum by () (...)",
        )
    starts = period_starts(end, period, count)
    first_end = starts[0] + period
    values: dict[int, float] = {}
    for s in series:
        for t, raw in s.get("values", []):
            offset = float(t) - first_end
            index = round(offset / period)
            if abs(offset - index * period) > 1e-3 or not 0 <= index < count:
                continue  # not one of our evaluation times
            value = float(raw)
            if math.isfinite(value):
                values[index] = value
    return [
        Datapoint(start, values.get(i), 1 if i in values else 0) for i, start in enumerate(starts)
    ]


def _labels(metric: Mapping[str, Any]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()))
    return "{" + inner + "}"


class PrometheusSource:
    """Alarm datapoints from a Prometheus server (``base_url`` like ``http://prom:9090``).

    ``timeout`` bounds each HTTP call (and is passed to Prometheus as the query's evaluation
    timeout); ``bearer_token`` or ``headers`` authenticate to a Prometheus behind a proxy.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        bearer_token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = dict(headers or {})
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never shows the headers: they may hold a token
        return f"PrometheusSource({self.base_url!r})"

    async def datapoints(
        self, metric: MetricSpec, statistic: str, *, end: int, period: int, count: int
    ) -> list[Datapoint]:
        """``count`` datapoints, oldest first: the query's value at each period's end."""
        query = (metric.query or "").strip()
        if metric.source != "prometheus" or not query:
            raise SpecError(
                [Problem("query", "a prometheus metric needs a PromQL query")], source="prometheus"
            )
        if statistic not in PROMETHEUS_STATISTICS:
            raise SpecError(
                [
                    Problem(
                        "statistic",
                        f"{statistic} does not apply to a PromQL"
                        " value; use Average (or aggregate in the query)",
                    )
                ],
                source=f"prometheus query {query!r}",
            )
        chunks = plan_chunks(int(end), int(period), count)
        results = await asyncio.gather(*(self._query_range(query, c) for c in chunks))
        series = [s for result in results for s in result]
        return datapoints_from_series(query, series, end=int(end), period=int(period), count=count)

    async def _query_range(self, query: str, chunk: Chunk) -> list[dict[str, Any]]:
        form = {
            "query": query,
            "start": str(chunk.start),
            "end": str(chunk.end),
            "step": str(chunk.step),
            "timeout": f"{self.timeout:g}s",
        }
        data = await self._post("/api/v1/query_range", form, query)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise SluicegateError(
                f"Prometheus at {self.base_url} answered query_range with a"
                f" {data.get('resultType')!r} result, not a matrix"
            )
        return result

    async def _post(self, path: str, form: dict[str, str], query: str) -> dict[str, Any]:
        url = self.base_url + path
        try:
            r = await self._http().post(url, data=form)
        except httpx.TimeoutException as exc:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.base_url} did not answer within {self.timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise PrometheusUnavailableError(
                f"cannot reach Prometheus at {self.base_url}: {exc!r}"
            ) from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        message = str(body.get("error") or r.text[:300].strip() or f"HTTP {r.status_code}")
        if r.status_code in (400, 422) and body.get("status") == "error":
            raise PrometheusQueryError(
                query,
                f"Prometheus refused the query ({body.get('errorType', r.status_code)}): {message}",
            )
        if r.status_code in (401, 403):
            raise AuthError(
                f"Prometheus at {self.base_url} answered {r.status_code}: {message}"
                " (check the bearer token)"
            )
        if r.status_code >= 500 or r.status_code == 429:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.base_url} answered {r.status_code}: {message}"
            )
        if r.status_code != 200 or body.get("status") != "success":
            raise SluicegateError(
                f"POST {url} answered {r.status_code}: {message} (is"
                f" {self.base_url} a Prometheus server?)"
            )
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers, timeout=self.timeout, follow_redirects=True
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
