"""Log-bucketed latency histogram in microseconds (pure).

Buckets 0..15 hold 0..15 µs exactly; above that each power of two is split into 8 buckets, so
a bucket is at most 1/8 of its lower bound wide (≤ 6.25 % error at the midpoint). Latencies
are clamped below 2**36 µs (19 h). 272 buckets in all; a bucket index is one ``bit_length``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["NUM_BUCKETS", "bucket_bounds", "bucket_index", "percentile", "prometheus_buckets"]

MAX_US = (1 << 36) - 1
NUM_BUCKETS = 16 + (36 - 4) * 8


def bucket_index(us: int) -> int:
    if us < 16:
        return us if us > 0 else 0
    us = min(us, MAX_US)
    bl = us.bit_length()
    return 16 + ((bl - 5) << 3) + ((us >> (bl - 4)) - 8)


def bucket_bounds(index: int) -> tuple[int, int]:
    """[lower, upper) in µs of a bucket."""
    if index < 16:
        return index, index + 1
    octave, sub = divmod(index - 16, 8)
    shift = octave + 1
    return (sub + 8) << shift, (sub + 9) << shift


def percentile(hist: Sequence[int] | dict[int, int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) in seconds, as the midpoint of its bucket; None if empty."""
    items = sorted(hist.items()) if isinstance(hist, dict) else list(enumerate(hist))
    total = sum(n for _, n in items)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, n in items:
        seen += n
        if n and seen >= rank:
            lo, hi = bucket_bounds(index)
            return (lo + hi) / 2 / 1e6
    lo, hi = bucket_bounds(items[-1][0])
    return (lo + hi) / 2 / 1e6


# Prometheus `le` bounds in seconds; each fine bucket lands in the first bound ≥ its upper edge.
PROM_BOUNDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


def prometheus_buckets(hist: Iterable[tuple[int, int]]) -> list[int]:
    """Cumulative counts per PROM_BOUNDS (plus +Inf last) from (index, count) pairs."""
    counts = [0] * (len(PROM_BOUNDS) + 1)
    for index, n in hist:
        upper = bucket_bounds(index)[1] / 1e6
        slot = next((i for i, b in enumerate(PROM_BOUNDS) if upper <= b), len(PROM_BOUNDS))
        counts[slot] += n
    running = 0
    for i, n in enumerate(counts):
        running += n
        counts[i] = running
    return counts
