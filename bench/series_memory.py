"""Memory of the push series store: bytes per series-second, and per series for a full window.

Run from the repository root:  .venv/bin/python bench/series_memory.py [--series 5] [--runs 3]
Fills ``--series`` series with one second of data for every second of the 3 h window, in
three shapes (one value per second; 10 values in about 3 buckets; 100 values spread over
about 40 buckets), measures the store's allocations with tracemalloc and prints a markdown
table (median over ``--runs``). It never asserts: the numbers are for people (and for the
memory note in ``sluicegate.monitor.series`` and docs/monitor.md).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tracemalloc

from sluicegate.monitor.series import DEFAULT_WINDOW, Observation, SeriesStore

T0 = 1_700_000_000


def shape_values(shape: str, rng: random.Random) -> list[float]:
    if shape == "one value":
        return [rng.uniform(1, 100)]
    if shape == "10 values, ~3 buckets":
        base = rng.uniform(10, 11)
        return [base * rng.choice((1.0, 1.15, 1.3)) for _ in range(10)]
    return [rng.lognormvariate(3, 1) for _ in range(100)]


def measure(shape: str, series: int, seed: int) -> float:
    rng = random.Random(seed)
    store = SeriesStore(window=DEFAULT_WINDOW, max_series=series)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for t in range(T0, T0 + DEFAULT_WINDOW):
        batch = [
            Observation("m", {"i": str(i)}, t, shape_values(shape, rng)) for i in range(series)
        ]
        store.put(batch, now=t)
        del batch
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    held = store.seconds_held()
    assert held == series * DEFAULT_WINDOW
    return (after - before) / held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.series} series x {DEFAULT_WINDOW} s, median of {args.runs} runs\n")
    print("| shape | bytes per series-second | MB per series (3 h) |")
    print("|---|---:|---:|")
    for shape in ("one value", "10 values, ~3 buckets", "100 values, ~40 buckets"):
        runs = [measure(shape, args.series, seed) for seed in range(args.runs)]
        per = statistics.median(runs)
        print(f"| {shape} | {per:.0f} | {per * DEFAULT_WINDOW / 1e6:.2f} |")


if __name__ == "__main__":
    main()
