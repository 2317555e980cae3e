"""What a flag-set rollout costs an evaluation: ``resolve`` (pick N or N+1, then evaluate)
against evaluating one version directly, same workload, same run.

    .venv/bin/python bench/flag_rollout_resolve.py [--reps 3] [--evals 200000]

Workload: ``new-checkout`` of bench/flag_eval.py (ON for a 100-user segment, else a 25 %
split by user id), 10,000 users ``user-00000..`` round robin; versions N and N+1 differ in
the split. Rows: ``evaluate`` on one compiled version; ``resolve`` with no rollout; with a
rollout at 0 %, 50 % and 100 % (0 and 100 answer without hashing). Rates are evaluations
per second of thread CPU time (the machine is shared), median of --reps repetitions
(interleaved across rows) after a 2,000-evaluation warm-up; the share that got N+1 is
printed as a check. Never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from sluicegate.flags import RolloutView, compile_flag_set, resolve


def flag_set(on_weight: float) -> dict[str, Any]:
    return {
        "segments": {"testers": {"ids": [f"user-{i:05d}" for i in range(0, 10_000, 100)]}},
        "flags": {
            "new-checkout": {
                "type": "boolean",
                "variants": {"on": True, "off": False},
                "default_variant": "off",
                "rules": [{"when": {"segment": "testers"}, "variant": "on"}],
                "fallthrough": {
                    "split": [
                        {"variant": "on", "weight": on_weight},
                        {"variant": "off", "weight": 100 - on_weight},
                    ]
                },
            }
        },
    }


def rate(fn: Callable[[dict[str, str]], Any], contexts: list[dict[str, str]], evals: int) -> float:
    n = len(contexts)
    for i in range(2000):
        fn(contexts[i % n])
    start = time.thread_time()
    for i in range(evals):
        fn(contexts[i % n])
    return evals / (time.thread_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--evals", type=int, default=200_000)
    args = parser.parse_args()
    n = compile_flag_set(flag_set(25), version=7)
    n1 = compile_flag_set(flag_set(50), version=8)
    contexts = [{"targetingKey": f"user-{i:05d}"} for i in range(10_000)]
    key = "new-checkout"
    rows: list[tuple[str, Callable[[dict[str, str]], Any], RolloutView | None]] = [
        ("evaluate(key, ctx) on one version", lambda c: n.evaluate(key, c), None),
        ("resolve, no rollout", lambda c: resolve(n, n1, None, key, c), None),
    ]
    for pct in (0, 50, 100):
        view = RolloutView("fr-0123456789ab", 7, 8, pct)
        rows.append(
            (f"resolve, rollout at {pct} %", lambda c, v=view: resolve(n, n1, v, key, c), view)
        )  # type: ignore[misc]
    # Repetitions interleaved across rows, so a noisy neighbour hits every row alike.
    runs: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    for _ in range(args.reps):
        for label, fn, _ in rows:
            runs[label].append(rate(fn, contexts, args.evals))
    print(f"{'':36} {'evals/s (median)':>17} {'runs':>28} {'on N+1':>7}")
    base = None
    for label, _, view in rows:
        med = statistics.median(runs[label])
        base = base or med
        share = "-"
        if view is not None:
            on_new = sum(
                resolve(n, n1, view, key, c).flag_metadata["version"] == 8 for c in contexts
            )
            share = f"{on_new / len(contexts):.3f}"
        print(
            f"{label:36} {med:>12,.0f} ({med / base:4.2f}) "
            f"{' '.join(f'{r / 1e6:.2f}M' for r in runs[label]):>28} {share:>7}"
        )


if __name__ == "__main__":
    main()
