"""The store-backed snapshot provider: what agents' streams are fed from."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.flagservice import FlagService
from sluicegate.flagservice.snapshots import StoreSnapshotProvider
from sluicegate.store import Store

pytestmark = pytest.mark.anyio

_FLAGS = {
    "flags": {
        "f": {"type": "boolean", "variants": {"on": True, "off": False}, "default_variant": "off"}
    }
}


async def test_a_change_committed_by_this_process_wakes_streams_without_waiting_a_poll(
    store: Store, service: FlagService
) -> None:
    prod = service
    prod.create_environment("prod", "production", "alice")
    await prod.apply("prod", _FLAGS, actor="t")
    provider = StoreSnapshotProvider(store, interval=30.0)  # polling alone would take 30 s
    try:
        first = await provider.changed("prod", None)
        assert first.version == 1
        waiting = asyncio.ensure_future(provider.changed("prod", first.etag))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        changed = {"flags": {"f": {**_FLAGS["flags"]["f"], "default_variant": "on"}}}
        await prod.apply("prod", changed, actor="t")
        second = await asyncio.wait_for(waiting, 5.0)
        assert second.version == 2 and second.document["flags"]["f"]["default_variant"] == "on"
    finally:
        await provider.close()
