"""Flag service fixtures: a real store (SQLite file, or PostgreSQL), a manual clock, alarms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import NotFoundError, TransientError
from sluicegate.flagservice import FlagService
from sluicegate.store import Store


class Alarms:
    """The alarm engine's seam (:data:`~sluicegate.flagservice.AlarmLookup`) over a dict of
    alarm states, set by the test: a stand-in until the lead wires the real alarm engine
    (another branch). ``broken`` makes every lookup fail as an unreachable engine would."""

    def __init__(self, *names: str) -> None:
        self.firing: dict[str, str | None] = dict.fromkeys(names)
        self.broken = False
        self.asked: list[str] = []

    async def __call__(self, name: str) -> str | None:
        self.asked.append(name)
        if self.broken:
            raise TransientError("the alarm engine did not answer")
        if name not in self.firing:
            raise NotFoundError(f"no alarm {name!r}")
        return self.firing[name]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def alarms() -> Alarms:
    return Alarms("shop/high-5xx", "shop/slow")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path, clock: ManualClock) -> Iterator[Store]:
    state_dir.mkdir(exist_ok=True)
    with Store.open(state_dir, clock=clock) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(
    request: pytest.FixtureRequest, state_dir: Path, clock: ManualClock
) -> Iterator[Store]:
    url: Any = state_dir
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_server").create_database()
    else:
        state_dir.mkdir(exist_ok=True)
    with Store.open(url, clock=clock) as opened:
        yield opened


@pytest.fixture
def service(store: Store, clock: ManualClock, alarms: Alarms) -> FlagService:
    return FlagService(store, clock, alarms)


def flag_set(value: str = "old", **more_flags: Any) -> dict[str, Any]:
    """A small valid flag set: ``checkout`` serves ``value``; beta testers get ``on``."""
    return {
        "segments": {"beta": {"ids": ["alice", "bob"]}},
        "flags": {
            "checkout": {"type": "string", "variants": {"v": value}, "default_variant": "v"},
            "new-search": {
                "type": "boolean",
                "rules": [{"name": "beta", "when": {"segment": "beta"}, "variant": "on"}],
            },
            **more_flags,
        },
    }
