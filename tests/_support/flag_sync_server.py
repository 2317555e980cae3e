"""A real uvicorn server hosting the flag sync routes over an in-memory snapshot provider.

Run as ``python -m tests._support.flag_sync_server --port P --state DIR``: it opens a
SQLite store in DIR, creates a reader, an admin and two agent tokens (printed as
``<name> <TOKEN>``: ``token``, ``admin``, ``agent-prod``, ``agent-staging``) and serves.
``PUT /test/snapshots`` (test-only, admin token) publishes a snapshot JSON: the stand-in
for the flag store, which the store-backed provider replaces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request

from sluicegate.api._auth import require
from sluicegate.api._flag_sync_routes import InMemorySnapshotProvider, add_flag_sync_routes
from sluicegate.flags.snapshot import parse_snapshot
from sluicegate.store import Store


def build_app(state: Path, heartbeat: float) -> tuple[FastAPI, dict[str, str]]:
    store = Store.open(state)
    tokens = {
        "token": store.tokens.create("reader", "agent"),
        "admin": store.tokens.create("admin", "test"),
        "agent-prod": store.tokens.create("agent", "agent-prod", "prod"),
        "agent-staging": store.tokens.create("agent", "agent-staging", "staging"),
    }
    provider = InMemorySnapshotProvider()
    app = FastAPI()
    app.state.store = store
    app.state.insecure = False
    add_flag_sync_routes(app, provider, heartbeat)

    @app.put("/test/snapshots", dependencies=[Depends(require("admin"))])
    async def publish(request: Request) -> dict[str, Any]:
        snapshot, _ = parse_snapshot(await request.body())
        await provider.publish(snapshot)
        return {"etag": snapshot.etag}

    @app.get("/test/reader-only", dependencies=[Depends(require("reader"))])
    async def reader_only() -> dict[str, str]:
        return {"ok": "yes"}

    return app, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    app, tokens = build_app(args.state, args.heartbeat)
    for name, token in tokens.items():
        print(f"{name} {token}", flush=True)
    sys.stdout.flush()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=1
    )


if __name__ == "__main__":
    main()
