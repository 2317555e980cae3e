"""A stand-in control plane for the adoption test, run as its own process.

    python control_plane.py STATE_DIR SERVICE REVISION REPLICAS

Starts the sample app's replicas with LocalCompute, prints the records as one JSON line,
then supervises until it is killed (the test SIGKILLs it, as a crash would).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from sluicegate.compute import LocalCompute
from tests.compute.conftest import app_spec


async def main() -> None:
    state_dir, service, revision, replicas = sys.argv[1:5]
    compute = LocalCompute(state_dir, poll_interval=0.05)
    started = await compute.start(service, revision, app_spec(int(replicas)))
    print(json.dumps([dataclasses.asdict(r) for r in started]), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
