"""ChangeSignal: one fire wakes every waiter in the same loop turn; a waiter that gives up
cancels only itself."""

from __future__ import annotations

import asyncio

from sluicegate.flagservice.snapshots import ChangeSignal


def test_one_fire_wakes_a_thousand_waiters_and_a_timed_out_waiter_harms_no_one() -> None:
    async def run() -> tuple[int, bool]:
        signal = ChangeSignal()
        woken = 0

        async def waiter() -> None:
            nonlocal woken
            await signal.wait()
            woken += 1

        tasks = [asyncio.create_task(waiter()) for _ in range(1000)]
        impatient = asyncio.create_task(asyncio.wait_for(signal.wait(), 0.01))
        await asyncio.wait([impatient])  # it times out; its wait is cancelled
        timed_out = isinstance(impatient.exception(), TimeoutError)
        signal.fire()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return woken, timed_out

    woken, timed_out = asyncio.run(run())
    assert woken == 1000 and timed_out


def test_a_fire_before_anyone_waits_is_not_remembered() -> None:
    async def run() -> bool:
        signal = ChangeSignal()
        signal.fire()
        try:
            await asyncio.wait_for(signal.wait(), 0.05)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(run())  # providers re-check their state before waiting
