"""Flag evaluation: Sluicegate's in-process evaluator against five peer SDKs, same workload,
same run.

    .venv/bin/python bench/flag_eval.py --setup-peers   # once: bench/.venv-peers from PyPI
    .venv/bin/python bench/flag_eval.py [--reps 3] [--evals 200000] [--quick]

Workload (shared/anchors/flag-sdks.md): 10,000 users ``user-00000..user-09999`` round robin;
``new-checkout`` is ON for a segment of 100 listed users (every 100th), else ON for a 25 %
split by user id (expected ON share 0.01 + 0.99 x 0.25 = 0.2575); ``simple`` is ON with no
rules. Each SDK runs in its own process, fully offline (GrowthBook features dict,
LaunchDarkly file data source with events off, Unleash bootstrapped, flagd FILE resolver
through the OpenFeature client, Flagsmith offline environment document); peers come from
bench/requirements-peers.txt in bench/.venv-peers, never from the project's venv. Rates are
evaluations per second of thread CPU time (the machine is shared; wall time is printed
too), median of --reps repetitions of --evals evaluations after a 2,000-eval warm-up. Every
SDK's ON share is checked so nobody wins by skipping the rule. It never asserts: the numbers
are for people. Also timed: validating and compiling a 1,000-flag set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_VENV = HERE / ".venv-peers"
PEERS_PY = PEERS_VENV / "bin" / "python"
WORKER = HERE / "_flag_peers.py"
EXPECTED_ON = 0.2575

RUNS: list[tuple[str, str, str]] = [
    # (worker name, label, which python)
    ("sluicegate", "sluicegate evaluate() -> Resolution", "project"),
    ("sluicegate:get_boolean", "sluicegate get_boolean() -> bool", "project"),
    ("sluicegate:segment100k", "sluicegate evaluate(), 100k-id segment", "project"),
    ("sluicegate:sdk", "sluicegate.sdk.Client evaluate() (in-process SDK)", "project"),
    ("sluicegate:sdk:get_boolean", "sluicegate.sdk.Client get_boolean()", "project"),
    ("baseline", "python floor (dict + set + mmh3, no SDK)", "project"),
    ("growthbook", "GrowthBook (shared instance + set_attributes)", "peers"),
    ("launchdarkly", "LaunchDarkly (file data source, events off)", "peers"),
    ("unleash", "Unleash (bootstrapped, offline)", "peers"),
    ("flagd", "flagd FILE resolver via OpenFeature client", "peers"),
    ("flagsmith", "Flagsmith (offline environment document)", "peers"),
]
PEERS = {"growthbook", "launchdarkly", "unleash", "flagd", "flagsmith"}


def setup_peers() -> None:
    if not PEERS_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run(
        [
            str(PEERS_PY),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(HERE / "requirements-peers.txt"),
        ],
        check=True,
    )
    print(f"peer SDKs installed in {PEERS_VENV}")


def run_worker(name: str, python: str, reps: int, evals: int) -> dict[str, Any]:
    exe = sys.executable if python == "project" else str(PEERS_PY)
    if python == "peers" and not PEERS_PY.exists():
        return {"name": name, "error": "not installed (run --setup-peers)"}
    try:
        proc = subprocess.run(
            [exe, str(WORKER), name, str(reps), str(evals)],
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "error": "timed out"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": f"failed: {last[:120]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def thousand_flags() -> dict[str, Any]:
    segments = {
        f"seg-{i:03d}": {"ids": [f"user-{j:05d}" for j in range(i, 10_000, 97)]} for i in range(50)
    }
    flags: dict[str, Any] = {}
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            flags[f"flag-{i:04d}"] = {
                "type": "boolean",
                "rules": [
                    {"name": "beta", "when": {"segment": f"seg-{i % 50:03d}"}, "variant": "on"}
                ],
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]
                },
            }
        elif kind == 1:
            flags[f"flag-{i:04d}"] = {
                "type": "string",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "default_variant": "a",
                "rules": [
                    {
                        "when": {
                            "all": [
                                {"attribute": "country", "op": "in", "value": ["DE", "FR", "NL"]},
                                {"attribute": "appVersion", "op": "semver_gte", "value": "2.1.0"},
                            ]
                        },
                        "variant": "b",
                    },
                    {
                        "when": {
                            "attribute": "email",
                            "op": "matches",
                            "value": r"@(corp|staff)\.example$",
                        },
                        "variant": "c",
                    },
                ],
            }
        elif kind == 2:
            flags[f"flag-{i:04d}"] = {
                "type": "number",
                "variants": {"low": 10, "high": 50},
                "default_variant": "low",
                "prerequisites": [{"flag": f"flag-{i - 2:04d}"}],
                "fallthrough": {"variant": "high"},
            }
        else:
            flags[f"flag-{i:04d}"] = {
                "type": "object",
                "variants": {"x": {"limit": 1}, "y": {"limit": 2}},
                "default_variant": "x",
            }
    return {"segments": segments, "flags": flags}


def compile_times(rounds: int = 5) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "src"))
    from sluicegate.flags import compile_flag_set, validate_flag_set

    raw = thousand_flags()
    validate, compile_ = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        normal = validate_flag_set(raw).document()
        t1 = time.process_time()
        compile_flag_set(normal)
        t2 = time.process_time()
        validate.append(t1 - t0)
        compile_.append(t2 - t1)
    return {
        "validate_ms": statistics.median(validate) * 1e3,
        "compile_ms": statistics.median(compile_) * 1e3,
    }


def segment_sweep(rounds: int, evals: int) -> list[tuple[int, float, float]]:
    """ns per rule-flag evaluation by segment size, sizes interleaved round by round so load
    on the shared machine hits them alike: (ids, median, min)."""
    import gc

    sys.path.insert(0, str(ROOT / "src"))
    from sluicegate.flags import compile_flag_set

    users = [f"user-{i:05d}" for i in range(10_000)]
    group = users[::100]
    sets = {}
    for size in (100, 10_000, 100_000, 1_000_000):
        ids = group + [f"other-{i:07d}" for i in range(size - len(group))]
        sets[size] = compile_flag_set(
            {
                "segments": {"g": {"ids": ids}},
                "flags": {
                    "r": {
                        "type": "boolean",
                        "variants": {"on": True, "off": False},
                        "default_variant": "off",
                        "rules": [{"when": {"segment": "g"}, "variant": "on"}],
                        "fallthrough": {
                            "split": [
                                {"variant": "on", "weight": 25.0},
                                {"variant": "off", "weight": 75.0},
                            ]
                        },
                    }
                },
            }
        )
    ctxs = [{"targetingKey": u} for u in users] * (evals // len(users))
    times: dict[int, list[float]] = {size: [] for size in sets}
    for _ in range(rounds):
        for size, flags in sets.items():
            evaluate = flags.evaluate
            gc.collect()
            t0 = time.thread_time()
            for c in ctxs:
                evaluate("r", c)
            times[size].append((time.thread_time() - t0) / len(ctxs) * 1e9)
    return [(size, statistics.median(t), min(t)) for size, t in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup-peers",
        action="store_true",
        help="create bench/.venv-peers and install the peer SDKs, then exit",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--evals", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 evals per repetition")
    parser.add_argument("--only", help="comma-separated worker names")
    args = parser.parse_args()
    if args.setup_peers:
        setup_peers()
        return
    evals = 20_000 if args.quick else args.evals
    wanted = set(args.only.split(",")) if args.only else None
    results = []
    for name, label, python in RUNS:
        if wanted and name not in wanted:
            continue
        print(f"running {label} ...", file=sys.stderr, flush=True)
        results.append((label, run_worker(name, python, args.reps, evals)))
    report(results, args.reps, evals)
    print(
        f"\nrule flag by segment size (ns per evaluation, thread CPU, {args.reps * 3} rounds"
        " interleaved):\n"
    )
    print("| listed ids | median ns/eval | min ns/eval |")
    print("|---:|---:|---:|")
    for size, median, low in segment_sweep(args.reps * 3, evals):
        print(f"| {size:,} | {median:.0f} | {low:.0f} |")
    times = compile_times()
    print(
        f"\n1,000-flag set (50 segments, splits, regex/semver rules, prerequisites, objects),"
        f" CPU median of 5: validate {times['validate_ms']:.0f} ms, compile "
        f"{times['compile_ms']:.0f} ms (target: compile <= 200 ms)"
    )


def report(results: list[tuple[str, dict[str, Any]]], reps: int, evals: int) -> None:
    ok = [r for _, r in results if "error" not in r]
    sg = next((r for r in ok if r["name"] == "sluicegate"), None)
    print(
        f"\nthread-CPU evals/s, median of {reps} x {evals:,} evaluations "
        f"(wall-clock median in parentheses); expected ON share {EXPECTED_ON}\n"
    )
    print(
        "| SDK (mode) | version | rule flag, pre-built ctx | rule flag, ctx+eval | "
        "static flag | Sluicegate ÷ SDK (rule / static) | ON share | group ON | static ON |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in results:
        if "error" in r:
            print(f"| {label} | — | {r['error']} | | | | | | |")
            continue
        cells = [
            f"{rate(r[m]['median_cpu'])} ({rate(r[m]['median_wall'])})"
            for m in ("rule_prebuilt", "rule_ctx", "static_prebuilt")
        ]
        ratio = "—"
        if sg is not None and r["name"] != "sluicegate":
            rule_x = sg["rule_prebuilt"]["median_cpu"] / r["rule_prebuilt"]["median_cpu"]
            static_x = sg["static_prebuilt"]["median_cpu"] / r["static_prebuilt"]["median_cpu"]
            ratio = f"{rule_x:.1f} / {static_x:.1f}"
        print(
            f"| {label} | {r['version']} | {' | '.join(cells)} | {ratio} | "
            f"{r['on_share']:.4f} | {r['group_on']}/100 | {r['static_on']:.2f} |"
        )
    if sg is None:
        return
    peers = [r for r in ok if r["name"] in PEERS]
    rule, static = sg["rule_prebuilt"]["median_cpu"], sg["static_prebuilt"]["median_cpu"]
    print(f"\ntargets: rule flag {rate(rule)} (>= 1M), static flag {rate(static)} (>= 3M)")
    if peers:
        best = max(peers, key=lambda r: r["rule_prebuilt"]["median_cpu"])
        best_static = max(peers, key=lambda r: r["static_prebuilt"]["median_cpu"])
        print(
            f"fastest peer, rule flag: {best['name']} {rate(best['rule_prebuilt']['median_cpu'])}"
            f" -> x{rule / best['rule_prebuilt']['median_cpu']:.1f} (target >= 8); static flag:"
            f" {best_static['name']} {rate(best_static['static_prebuilt']['median_cpu'])} -> "
            f"x{static / best_static['static_prebuilt']['median_cpu']:.1f}"
        )
    big = next((r for r in ok if r["name"] == "sluicegate:segment100k"), None)
    if big is not None:
        delta = big["rule_prebuilt"]["median_cpu"] / rule - 1
        print(
            f"100k-id segment vs 100-id segment, rule flag: {delta:+.1%} "
            f"(noise on this machine is about ±10 %)"
        )


if __name__ == "__main__":
    main()
