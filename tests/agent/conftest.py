from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.flag_sync import SyncServer


@pytest.fixture
def sync_server(tmp_path: Path) -> Iterator[SyncServer]:
    server = SyncServer(tmp_path / "server-state").start()
    try:
        yield server
    finally:
        server.stop()
