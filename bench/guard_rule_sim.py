#!/usr/bin/env python3
"""Simulate the default canary guard's fire rule over many synthetic canaries (no processes).

    .venv/bin/python bench/guard_rule_sim.py [--bad-runs 2000] [--healthy-runs 5000]

Twenty real healthy deployments (``bench/blast_radius.py --healthy-runs 20``) cannot tell a
false-rollback rate of 1 in 1,000 from 0; this can. It replays the blast-radius scenario's
traffic with the guard's own statistics (``monitor.canary.judge_errors``, the defaults of
``monitor.guards.DefaultGuards``): 50 user slots sending 200 req/s round-robin; a new user
replaces the oldest every 0.2 s and is pinned to green with probability 10 % (sticky
sessions: users there before the deployment stay on blue). The guard judges 4 times a
second over the seconds in which green had traffic. Bad green: 30 % errors, blue none;
healthy: 1 % errors on both (``--healthy-green``/``--healthy-blue``), for a 50 s canary step.
The rules: the fixed-sample test held 0.5 s alone, and with the sequential test beside it
at several alphas (``--only N`` picks rules).

Reported per rule: seconds from green's first failed request to the guard firing (p50/p95/
max over the bad runs; the real path adds ≈ 0.1–0.2 s of router reads and one weight
change), green requests failed by then, and the share of healthy runs in which it fired.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from sluicegate.monitor.canary import (  # noqa: E402
    Outcome,
    judge_errors,
    judge_errors_sequential,
)

TICK = 0.25
RATE = 200
SLOTS = 50
ARRIVAL = 0.2
WEIGHT = 0.10


@dataclass(frozen=True)
class Rule:
    name: str
    min_errors: int = 3
    confidence: float = 0.999
    confirm: float = 0.5
    # a FAIL this strong fires without waiting for confirmation (None: never)
    strong_p: float | None = None
    strong_min_errors: int = 3
    # the sequential test (monitor.canary.judge_errors_sequential), which fires at once
    sprt_alpha: float | None = None
    sprt_effect: float = 0.20


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Successes in ``n`` trials, by geometric skips (cheap for small ``p``)."""
    if p <= 0.0 or n <= 0:
        return 0
    if p >= 0.2:
        return sum(rng.random() < p for _ in range(n))
    k, pos, log_q = 0, -1, math.log1p(-p)
    while True:
        pos += int(math.log(1.0 - rng.random()) / log_q) + 1
        if pos >= n:
            return k
        k += 1


def canary(
    rng: random.Random, green_fail: float, blue_fail: float, seconds: float, rule: Rule
) -> tuple[float | None, float | None, int]:
    """One simulated canary: (first green error time, fire time, green errors by the fire).
    Every slot sends one request per 0.25 s tick (200 req/s over 50 slots)."""
    sides = [False] * SLOTS  # pinned to green?
    slot, t, next_arrival = 0, 0.0, ARRIVAL
    per_second: dict[int, list[int]] = {}  # second -> [green errors, green, blue errors, blue]
    first_bad: float | None = None
    failing_since: float | None = None
    failing_seen = 0
    while t < seconds:
        while t >= next_arrival:
            sides[slot] = rng.random() < WEIGHT
            slot = (slot + 1) % SLOTS
            next_arrival += ARRIVAL
        green = sum(sides)
        g_err = binomial(rng, green, green_fail)
        if g_err and first_bad is None:
            first_bad = t + rng.random() * TICK
        counts = per_second.setdefault(int(t), [0, 0, 0, 0])
        counts[0] += g_err
        counts[1] += green
        counts[2] += binomial(rng, SLOTS - green, blue_fail)
        counts[3] += SLOTS - green
        t += TICK
        ge = gt = be = bt = 0
        for e_g, t_g, e_b, t_b in per_second.values():
            if t_g:  # paired seconds: only those in which green had traffic
                ge, gt, be, bt = ge + e_g, gt + t_g, be + e_b, bt + t_b
        if rule.sprt_alpha is not None and bt:
            sequential = judge_errors_sequential(
                ge, gt, be, bt, alpha=rule.sprt_alpha, effect=rule.sprt_effect
            )
            if sequential.outcome is Outcome.FAIL:
                return first_bad, t, ge
        if ge < min(rule.min_errors, rule.strong_min_errors) or not bt:
            failing_since = None
            continue
        verdict = judge_errors(
            ge,
            gt,
            be,
            bt,
            confidence=rule.confidence,
            tolerated_increase=0.01,
            min_errors=rule.min_errors,
        )
        if (
            rule.strong_p is not None
            and ge >= rule.strong_min_errors
            and verdict.p_value is not None
            and verdict.p_value < rule.strong_p
        ):
            return first_bad, t, ge
        if verdict.outcome is not Outcome.FAIL:
            failing_since = None
            continue
        if failing_since is None:
            failing_since, failing_seen = t, gt
        elif t - failing_since >= rule.confirm and gt > failing_seen:
            return first_bad, t, ge
    return first_bad, None, ge


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bad-runs", type=int, default=2000)
    parser.add_argument("--healthy-runs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--healthy-green",
        type=float,
        default=0.01,
        help="green's error rate in the healthy runs (default 0.01)",
    )
    parser.add_argument(
        "--healthy-blue",
        type=float,
        default=0.01,
        help="blue's error rate in the healthy runs (default 0.01)",
    )
    parser.add_argument(
        "--only", type=int, action="append", help="run only rule number N (0-based; repeatable)"
    )
    args = parser.parse_args()
    rules = [
        Rule("fixed test only: ≥3 errors, p<1e-3, FAIL held 0.5 s"),
        Rule("+ sequential test +20 pt, α=0.3 %", sprt_alpha=3e-3),
        Rule("+ sequential test +20 pt, α=0.5 % (default)", sprt_alpha=5e-3),
        Rule("+ sequential test +20 pt, α=1 %", sprt_alpha=1e-2),
    ]
    print(
        f"{args.bad_runs} bad canaries (green 30 % errors, blue 0 %), {args.healthy_runs} "
        f"healthy ones (green {args.healthy_green:.1%}, blue {args.healthy_blue:.1%} errors, "
        "50 s); judged every 0.25 s\n"
    )
    print(
        "| rule | first bad → fire p50 s | p95 s | max s | green errors p50 / p95 "
        "| never fired (bad) | false fires (healthy) |"
    )
    print("|---|---|---|---|---|---|---|")
    run: Callable[..., tuple[float | None, float | None, int]] = canary
    for number, rule in enumerate(rules):
        if args.only and number not in args.only:
            continue
        rng = random.Random(args.seed)
        delays: list[float] = []
        errors: list[float] = []
        missed = 0
        for _ in range(args.bad_runs):
            first, fired, ge = run(rng, 0.30, 0.0, 120.0, rule)
            if first is None or fired is None:
                missed += 1
                continue
            delays.append(fired - first)
            errors.append(ge)
        false = sum(
            run(rng, args.healthy_green, args.healthy_blue, 50.0, rule)[1] is not None
            for _ in range(args.healthy_runs)
        )
        print(
            f"| {rule.name} | {statistics.median(delays):.2f} | {pct(delays, 95):.2f} | "
            f"{max(delays):.2f} | {statistics.median(errors):.0f} / {pct(errors, 95):.0f} "
            f"| {missed} | {false} of {args.healthy_runs} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
