"""Does exposure reporting cost the agent anything? OFREP under wrk with reporting off, at
the default 10 s and at an aggressive 0.2 s, against a real ``sluice server``; afterwards
the server's count is compared with the evaluations wrk saw answered.

    .venv/bin/python bench/agent_exposures.py [--duration 10] [--reps 3] [--connections 32]

Same workload and pinning as ``bench/agent.py`` (agent on CPU 0, wrk on CPU 1). Prints
medians of --reps runs and, per setting, evaluations answered (wrk's completed requests
plus the warm-up checks) vs. the exposures the server stored after the agent's clean
shutdown. wrk does not count requests still in flight when it stops, so the server may
be ahead by up to --connections per run. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from agent import LUA, cpu_seconds, flag_set, wrk  # noqa: E402
from tests._support.flag_sync import start_agent  # noqa: E402
from tests._support.server import running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-exposures-"))
    script = tmp / "ofrep.lua"
    script.write_text(LUA)
    (tmp / "flags.json").write_text(json.dumps(flag_set()))
    with running_server(tmp / "state") as server:
        server.cli("flags", "envs", "create", "prod")
        server.cli("flags", "apply", "-f", str(tmp / "flags.json"), "--env", "prod")
        key = server.cli("keys", "create", "--env", "prod").strip()
        since = int(time.time()) - 60
        print(
            f"{'--report-interval':<18}{'req/s':>10}{'req/CPU-s':>12}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'answered':>11}{'stored':>11}  runs (req/s / p99 ms)"
        )
        for interval in ("0", "10s", "0.2s"):
            before = sum(
                v["count"] for v in server.api(f"/flags/prod/exposures?since={since}")["variants"]
            )
            agent = start_agent(
                server.url,
                key,
                tmp / f"cache-{interval}",
                extra=["--report-interval", interval],
                timeout=20,
            )
            try:
                agent.wait_for(
                    lambda: agent.get("/healthz").status_code == 200,  # noqa: B023
                    what="ready",
                )
                subprocess.run(
                    ["taskset", "-pc", "0", str(agent.pid)], check=True, capture_output=True
                )
                agent.ofrep("new-checkout", {"targetingKey": "user-00100"})
                runs, per_cpu = [], []
                for _ in range(args.reps):
                    cpu = cpu_seconds(agent.pid)
                    run = wrk(agent.url, args.duration, args.connections, script)
                    used = cpu_seconds(agent.pid) - cpu
                    runs.append(run)
                    per_cpu.append(run.requests / used if used else 0.0)
            finally:
                agent.stop()
            answered = sum(r.requests for r in runs) + 1
            stored = (
                sum(
                    v["count"]
                    for v in server.api(f"/flags/prod/exposures?since={since}")["variants"]
                )
                - before
            )
            detail = " ".join(f"{r.rps:.0f}/{r.p99_ms}" for r in runs)
            print(
                f"{interval:<18}{statistics.median(r.rps for r in runs):>10.0f}"
                f"{statistics.median(per_cpu):>12.0f}"
                f"{statistics.median(r.p50_ms or 0 for r in runs):>9.3f}"
                f"{statistics.median(r.p99_ms or 0 for r in runs):>9.3f}"
                f"{answered:>11}{stored if interval != '0' else '-':>11}  {detail}"
            )


if __name__ == "__main__":
    main()
