"""Time the canary judgement over 60 s of per-second router counts for green and blue.

Run from the repository root:  .venv/bin/python bench/canary_judgement.py [--rounds N]
The judgement runs every second, so it must take well under 10 ms. Prints a markdown table:
per traffic level, the time to merge 60 per-second histograms per group (the caller's part)
and the time of ``judge`` itself (errors + latency), median and p99 over the rounds. It never
asserts: the numbers are for people.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter

import numpy as np

from sluicegate.monitor.canary import GroupCounts, judge
from sluicegate.router._histogram import bucket_index

SECONDS = 60


def per_second_histograms(
    rng: np.random.Generator, rate: int, median_ms: float
) -> list[dict[int, int]]:
    seconds = []
    for _ in range(SECONDS):
        latencies = rng.lognormal(math.log(median_ms * 1000), 0.6, rate)
        seconds.append(dict(Counter(bucket_index(int(us)) for us in latencies)))
    return seconds


def merge(seconds: list[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for hist in seconds:
        for index, n in hist.items():
            total[index] = total.get(index, 0) + n
    return total


def ms(xs: list[float]) -> tuple[str, str]:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return f"{statistics.median(xs) * 1e3:.3f}", f"{p99 * 1e3:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(f"{SECONDS} s window, {args.rounds} rounds; times in ms\n")
    print("| green req/s | blue req/s | merge p50 | merge p99 | judge p50 | judge p99 | outcome |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for green_rate, blue_rate in [(1, 99), (10, 990), (100, 900), (1000, 9000), (5000, 5000)]:
        green_s = per_second_histograms(rng, green_rate, 21.0)
        blue_s = per_second_histograms(rng, blue_rate, 20.0)
        green_n, blue_n = green_rate * SECONDS, blue_rate * SECONDS
        green_err = int(rng.binomial(green_n, 0.01))
        blue_err = int(rng.binomial(blue_n, 0.01))
        merges: list[float] = []
        judges: list[float] = []
        outcome = ""
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            green_hist, blue_hist = merge(green_s), merge(blue_s)
            t1 = time.perf_counter()
            j = judge(
                GroupCounts(green_err, green_n, green_hist),
                GroupCounts(blue_err, blue_n, blue_hist),
            )
            t2 = time.perf_counter()
            merges.append(t1 - t0)
            judges.append(t2 - t1)
            outcome = j.outcome.value
        m50, m99 = ms(merges)
        j50, j99 = ms(judges)
        print(f"| {green_rate} | {blue_rate} | {m50} | {m99} | {j50} | {j99} | {outcome} |")


if __name__ == "__main__":
    main()
