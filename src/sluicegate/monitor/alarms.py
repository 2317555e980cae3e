"""Alarm evaluation with CloudWatch's documented semantics, as pure functions.

No I/O and no clock: the caller passes the datapoints of the *evaluation range* (one per
period, oldest first, newest last, missing ones as ``value=None``) and the alarm's previous
state, and gets back the new state with a reason that shows the datapoints.

The rules, from the CloudWatch user guide (``AlarmThatSendsEmail.md``, "How alarm state is
evaluated when data is missing") and the anchor ``progressive-delivery.md`` §3.1:

1. A datapoint is *real* when it has a finite value computed from at least ``min_samples``
   samples; otherwise it is *missing*.
2. The range holds more periods than N (:func:`evaluation_range`: N + 2, the 5-for-3 of the
   guide's tables). With at least N real datapoints in the range, the newest N real ones are
   evaluated and ``treat_missing_data`` is not used at all: ALARM when at least M of them
   breach, else OK. Breaching points need not be consecutive (M out of N).
3. With fewer than N real datapoints (k), all k are evaluated, "no matter when they were
   reported", together with N - k missing ones, treated by ``treat_missing_data``:

   - ``breaching`` / ``notBreaching``: the N - k fill-ins breach / do not; then as in 2.
   - ``missing`` and ``ignore``: the fill-ins are unknown. At least M real breaching ->
     ALARM; any real non-breaching datapoint (and fewer than M breaching) -> OK. Otherwise
     (no real datapoint, or only breaching ones but fewer than M) the data cannot decide:
     ``missing`` gives INSUFFICIENT_DATA and ``ignore`` keeps the previous state -- except
     the *premature-ALARM rule* for ``missing``: when every real datapoint breaches and the
     oldest one is at least M periods old (the newest period is 1 old), the state is ALARM.

   Every cell of both tables in the guide (M = N = 3 and 2 of 3, range 5) and the anchor's
   ``- - X - -`` row follow from this; ``tests/monitor/test_alarms.py`` lists them. The one
   choice the text leaves open -- whether the premature rule also fires when an older real
   datapoint is non-breaching -- is settled by the 2-of-3 table's ``0 - X - -`` = OK under
   ``missing``: it does not.
4. Percentile alarms with ``evaluate_low_sample_count_percentile: ignore`` keep their state
   while any evaluated datapoint has fewer samples than :func:`low_sample_threshold` (10/(1-p)
   for p >= 0.5, 10/p below; < 1000 samples for p99). With ``evaluate`` (the default) such
   datapoints are evaluated like any other.

A brand-new alarm (previous state None) counts as INSUFFICIENT_DATA, as in CloudWatch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sluicegate.spec import AlarmSpec, parse_statistic
from sluicegate.spec._expression import evaluate_expr, refs

__all__ = [
    "AlarmState",
    "AlarmTransition",
    "Datapoint",
    "EvaluatedPoint",
    "Evaluation",
    "Histogram",
    "PercentileFn",
    "StatSet",
    "aggregate",
    "aggregate_percentile",
    "breaches",
    "combine",
    "evaluate",
    "evaluation_range",
    "low_sample_threshold",
    "period_starts",
    "transition",
]


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


@dataclass(frozen=True)
class Datapoint:
    """One period's value. ``timestamp`` is the period's start (epoch seconds)."""

    timestamp: float
    value: float | None  # None: no data in this period
    samples: int = 0  # how many samples the value was computed from


@dataclass(frozen=True)
class EvaluatedPoint:
    """A datapoint the decision looked at; ``filled`` ones were missing and stand in by the
    ``treat_missing_data`` rule (their value is None)."""

    timestamp: float
    value: float | None
    samples: int
    breaching: bool
    filled: bool = False


@dataclass(frozen=True)
class Evaluation:
    alarm: str
    state: AlarmState
    reason: str
    breaching_count: int
    considered: tuple[EvaluatedPoint, ...] = ()  # oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "state": self.state.value,
            "reason": self.reason,
            "breaching_count": self.breaching_count,
            "datapoints": [
                {
                    "timestamp": p.timestamp,
                    "value": p.value,
                    "samples": p.samples,
                    "breaching": p.breaching,
                    "filled": p.filled,
                }
                for p in self.considered
            ],
        }


@dataclass(frozen=True)
class AlarmTransition:
    """An alarm changed state: what the engine records as one event."""

    alarm: str
    old_state: AlarmState
    new_state: AlarmState
    at: float
    evaluation: Evaluation = field(repr=False)

    @property
    def reason(self) -> str:
        return self.evaluation.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "old_state": self.old_state.value,
            "new_state": self.new_state.value,
            "at": self.at,
            "reason": self.reason,
            "breaching_count": self.evaluation.breaching_count,
            "datapoints": self.evaluation.to_json()["datapoints"],
        }


# --- aggregation: per-second inputs -> one datapoint per period ----------------------------


@dataclass(frozen=True)
class StatSet:
    """One second's observations of a metric, summarised (CloudWatch's StatisticSet)."""

    count: int
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    @classmethod
    def of(cls, values: Iterable[float]) -> StatSet:
        vals = list(values)
        if not vals:
            return cls(0)
        return cls(len(vals), math.fsum(vals), min(vals), max(vals))

    @classmethod
    def events(cls, n: int) -> StatSet:
        """n events of weight 1 (a counter second): Sum and SampleCount are n."""
        return cls(n, float(n), 1.0, 1.0) if n else cls(0)

    def merge(self, other: StatSet) -> StatSet:
        return StatSet(
            self.count + other.count,
            self.total + other.total,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
        )


Histogram = Mapping[int, int] | Sequence[int]
"""Latency buckets as the router keeps them: bucket index -> count (dict or dense list)."""

PercentileFn = Callable[[dict[int, int], float], float | None]
"""``percentile(hist, q)`` of a merged histogram, e.g. ``sluicegate.router._histogram``'s."""


def period_starts(end: int, period: int, count: int) -> list[int]:
    """Starts of the ``count`` periods ending at ``end`` (exclusive), oldest first."""
    return [end - (count - i) * period for i in range(count)]


def _value(statistic: str, s: StatSet) -> float | None:
    if statistic == "Sum":
        return s.total
    if statistic == "SampleCount":
        return float(s.count)
    if s.count == 0:
        return None
    if statistic == "Average":
        return s.total / s.count
    if statistic == "Minimum":
        return s.minimum
    if statistic == "Maximum":
        return s.maximum
    raise ValueError(f"{statistic!r} needs aggregate_percentile (histograms), not aggregate")


def aggregate(
    statistic: str, seconds: Mapping[int, StatSet], *, end: int, period: int, count: int
) -> list[Datapoint]:
    """One datapoint per period for Sum, SampleCount, Average, Minimum or Maximum.

    ``seconds`` maps an epoch second to its StatSet. A period with no second present is
    missing; a present but empty one (a series with no traffic) has Sum and SampleCount 0
    and no Average/Minimum/Maximum (missing).
    """
    out: list[Datapoint] = []
    for start in period_starts(end, period, count):
        present = [seconds[t] for t in range(start, start + period) if t in seconds]
        if not present:
            out.append(Datapoint(start, None, 0))
            continue
        merged = present[0]
        for s in present[1:]:
            merged = merged.merge(s)
        out.append(Datapoint(start, _value(statistic, merged), merged.count))
    return out


def aggregate_percentile(
    q: float,
    seconds: Mapping[int, Histogram],
    *,
    end: int,
    period: int,
    count: int,
    percentile: PercentileFn,
) -> list[Datapoint]:
    """One datapoint per period: the q-quantile (0 < q <= 1) of the period's merged histogram.

    A period without any histogram, or whose histograms are empty, is missing.
    """
    out: list[Datapoint] = []
    for start in period_starts(end, period, count):
        merged: dict[int, int] = {}
        for t in range(start, start + period):
            hist = seconds.get(t)
            if hist is None:
                continue
            pairs = hist.items() if isinstance(hist, Mapping) else enumerate(hist)
            for index, n in pairs:
                if n:
                    merged[index] = merged.get(index, 0) + n
        total = sum(merged.values())
        value = percentile(merged, q) if total else None
        out.append(Datapoint(start, value, total))
    return out


def combine(spec: AlarmSpec, series: Mapping[str, Sequence[Datapoint]]) -> list[Datapoint]:
    """The alarm's datapoints from each metric id's (see ``spec.queries``).

    A single-metric alarm returns its ``m1`` series. For an expression, each timestamp's value
    is the expression over the metrics' values there (missing when any operand is missing or
    on division by zero); its samples are those of ``samples_from``, or the largest among the
    metrics read. All series must cover the same periods.
    """
    if spec.tree is None:
        return list(series["m1"])
    ids = sorted(refs(spec.tree))
    length = len(series[ids[0]])
    if any(len(series[i]) != length for i in ids):
        raise ValueError("metric series of one expression must cover the same periods")
    out: list[Datapoint] = []
    for row in zip(*(series[i] for i in ids), strict=True):
        if len({p.timestamp for p in row}) != 1:
            raise ValueError("metric series of one expression must cover the same periods")
        points = dict(zip(ids, row, strict=True))
        values = {i: p.value for i, p in points.items()}
        if spec.samples_from is not None:
            samples = series[spec.samples_from][len(out)].samples
        else:
            samples = max(p.samples for p in row)
        out.append(Datapoint(row[0].timestamp, evaluate_expr(spec.tree, values), samples))
    return out


# --- evaluation ----------------------------------------------------------------------------


def evaluation_range(spec: AlarmSpec) -> int:
    """How many periods to fetch: N + 2 (the guide's examples fetch 5 for N = 3)."""
    return spec.evaluation_periods + 2


def low_sample_threshold(q: float) -> float:
    """CloudWatch's low-sample bound for a percentile: 10/(1-q) for q >= 0.5, 10/q below."""
    if q >= 0.5:
        return math.inf if q >= 1 else 10 / (1 - q)
    return 10 / q


def breaches(spec: AlarmSpec, value: float) -> bool:
    """Whether ``value`` is on the alarming side of the threshold."""
    t = spec.threshold
    op = spec.comparison
    if op == "GreaterThanThreshold":
        return value > t
    if op == "GreaterThanOrEqualToThreshold":
        return value >= t
    if op == "LessThanThreshold":
        return value < t
    return value <= t


_PHRASE = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


def evaluate(
    spec: AlarmSpec, datapoints: Sequence[Datapoint], previous_state: AlarmState | None = None
) -> Evaluation:
    """The alarm's state over ``datapoints``, the evaluation range (oldest first).

    The range must hold at least N datapoints, one per period: consecutive timestamps exactly
    ``spec.period`` apart (a period without data is a Datapoint with value None).
    """
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    _check_range(spec, datapoints)
    previous = previous_state or AlarmState.INSUFFICIENT_DATA
    size = len(datapoints)
    # (age in periods, datapoint) of the real ones; the newest period is 1 old.
    real = [(size - i, p) for i, p in enumerate(datapoints) if _is_real(spec, p)]
    k = len(real)
    evaluated = [_point(spec, p) for _, p in (real[-n:] if k >= n else real)]
    low = _low_sample(spec, evaluated, previous)
    if low is not None:
        return low
    if k >= n:
        return _threshold(spec, evaluated, previous, fill=None)

    if spec.treat_missing_data in ("breaching", "notBreaching"):
        breach = spec.treat_missing_data == "breaching"
        # Fill the newest missing periods: missing data is used as few times as possible.
        missing_slots = [p for p in datapoints if not _is_real(spec, p)]
        fills = [
            EvaluatedPoint(p.timestamp, None, p.samples, breach, filled=True)
            for p in missing_slots[len(missing_slots) - (n - k) :]
        ]
        chosen = sorted(evaluated + fills, key=lambda p: p.timestamp)
        return _threshold(spec, chosen, previous, fill=spec.treat_missing_data)

    breaching = sum(p.breaching for p in evaluated)
    if breaching >= m or breaching < k:
        return _threshold(spec, evaluated, previous, fill=spec.treat_missing_data)
    # No real datapoint, or only breaching ones but fewer than M: the data cannot decide.
    ignore = spec.treat_missing_data == "ignore"
    if k and not ignore and real[0][0] >= m:
        return _premature(spec, evaluated, real[0][0], previous)
    return _undecided(spec, evaluated, size, previous, ignore)


def transition(
    previous: AlarmState | None, evaluation: Evaluation, now: float
) -> AlarmTransition | None:
    """The event to record when ``evaluation`` changes the alarm's state, else None.

    A new alarm (previous None) starts in INSUFFICIENT_DATA, so its first OK or ALARM is a
    transition and a first INSUFFICIENT_DATA is not.
    """
    old = previous or AlarmState.INSUFFICIENT_DATA
    if evaluation.state == old:
        return None
    return AlarmTransition(evaluation.alarm, old, evaluation.state, now, evaluation)


# --- helpers -------------------------------------------------------------------------------


def _check_range(spec: AlarmSpec, datapoints: Sequence[Datapoint]) -> None:
    n = spec.evaluation_periods
    if len(datapoints) < n:
        raise ValueError(
            f"alarm {spec.name!r}: the evaluation range holds {len(datapoints)}"
            f" datapoints, fewer than evaluation_periods ({n})"
        )
    for a, b in itertools.pairwise(datapoints):
        if not math.isclose(b.timestamp - a.timestamp, spec.period, abs_tol=1e-6):
            raise ValueError(
                f"alarm {spec.name!r}: datapoints must be one per period"
                f" ({spec.period:g}s apart), oldest first; got {a.timestamp:g}"
                f" then {b.timestamp:g}"
            )


def _is_real(spec: AlarmSpec, p: Datapoint) -> bool:
    return p.value is not None and math.isfinite(p.value) and p.samples >= spec.min_samples


def _point(spec: AlarmSpec, p: Datapoint) -> EvaluatedPoint:
    assert p.value is not None
    return EvaluatedPoint(p.timestamp, p.value, p.samples, breaches(spec, p.value))


def _low_sample(
    spec: AlarmSpec, evaluated: Sequence[EvaluatedPoint], previous: AlarmState
) -> Evaluation | None:
    q = spec.percentile
    if q is None or spec.low_sample_mode != "ignore":
        return None
    bound = low_sample_threshold(q)
    low = [p for p in evaluated if p.samples < bound]
    if not low:
        return None
    stat = parse_statistic(spec.statistic or "")[0]
    shown = _list(low)
    return Evaluation(
        spec.name,
        previous,
        f"Unchanged: {_count(len(low), 'datapoint')} {shown} had fewer than"
        f" {bound:g} samples, too few for {stat}"
        f" (evaluate_low_sample_count_percentile: ignore); the alarm stays"
        f" {previous.value}.",
        sum(p.breaching for p in evaluated),
        tuple(evaluated),
    )


def _threshold(
    spec: AlarmSpec, chosen: Sequence[EvaluatedPoint], previous: AlarmState, fill: str | None
) -> Evaluation:
    """ALARM when at least M of ``chosen`` breach, else OK; CloudWatch's reason text."""
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    breaching = sum(p.breaching for p in chosen)
    alarm = breaching >= m
    state = AlarmState.ALARM if alarm else AlarmState.OK
    shown = [p for p in reversed(chosen) if p.breaching == alarm]  # newest first
    phrase = _PHRASE[spec.comparison] if alarm else "not " + _PHRASE[spec.comparison]
    verb = "was" if len(shown) == 1 else "were"
    if len(chosen) == 1:
        head = f"1 datapoint {_list(shown)} {verb}"
    else:
        head = f"{len(shown)} out of the last {len(chosen)} datapoints {_list(shown)} {verb}"
    reason = f"Threshold Crossed: {head} {phrase} the threshold ({_num(spec.threshold)})"
    if state != previous:
        need = m if alarm else n - m + 1
        reason += (
            f" (minimum {_count(need, 'datapoint')} for {previous.value} ->"
            f" {state.value} transition)"
        )
    if fill is not None and any(p.filled for p in chosen):
        reason += f"; missing data treated as {fill}"
    elif fill is not None and len(chosen) < n:
        reason += (
            f"; only {len(chosen)} of {n} datapoints"
            f" {'was' if len(chosen) == 1 else 'were'} received and missing data is"
            f" {'ignored' if fill == 'ignore' else 'treated as missing'}"
        )
    return Evaluation(spec.name, state, reason + ".", breaching, tuple(chosen))


def _premature(
    spec: AlarmSpec, evaluated: Sequence[EvaluatedPoint], age: int, previous: AlarmState
) -> Evaluation:
    m = spec.datapoints_to_alarm
    k = len(evaluated)
    received = "the only datapoint" if k == 1 else f"all {k} datapoints"
    reason = (
        f"Threshold Crossed: {received} received {_list(list(reversed(evaluated)))}"
        f" {'was' if k == 1 else 'were'} {_PHRASE[spec.comparison]} the threshold"
        f" ({_num(spec.threshold)}), the oldest {age} periods ago (at least"
        f" datapoints_to_alarm = {m}), and the other periods are missing"
        f" (premature-ALARM rule; missing data treated as missing)"
    )
    if previous != AlarmState.ALARM:
        reason += f" ({previous.value} -> ALARM transition)"
    return Evaluation(spec.name, AlarmState.ALARM, reason + ".", len(evaluated), tuple(evaluated))


def _undecided(
    spec: AlarmSpec,
    evaluated: Sequence[EvaluatedPoint],
    size: int,
    previous: AlarmState,
    ignore: bool,
) -> Evaluation:
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    if evaluated:
        what = (
            f"only {_count(len(evaluated), 'datapoint')} {_list(list(reversed(evaluated)))}"
            f" of the {n} needed {'was' if len(evaluated) == 1 else 'were'} received in the"
            f" last {size} periods, all breaching but fewer than {m}"
        )
    else:
        what = f"no datapoints were received in the last {size} periods"
    if spec.min_samples:
        what += f" (a datapoint needs at least {spec.min_samples} samples)"
    if ignore:
        reason = f"Unchanged: {what}; missing data is ignored, the alarm stays {previous.value}."
        state = previous
    else:
        reason = f"Insufficient Data: {what}."
        state = AlarmState.INSUFFICIENT_DATA
    return Evaluation(spec.name, state, reason, len(evaluated), tuple(evaluated))


def _num(v: float) -> str:
    return repr(round(v, 6))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _list(points: Sequence[EvaluatedPoint]) -> str:
    parts = [
        f"{'missing' if p.value is None else _num(p.value)} ({_when(p.timestamp)})" for p in points
    ]
    return "[" + ", ".join(parts) + "]"


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" if k == 1 else f"{k} {noun}s"
