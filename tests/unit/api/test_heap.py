"""The heap policy: long-lived objects frozen out of the collector, every pause measured."""

from __future__ import annotations

import asyncio
import gc

from fraudops.api.heap import HeapPolicy


def test_installing_freezes_survivors_and_measures_pauses() -> None:
    """After install, start-up objects are frozen and a collection reports its pause."""
    pauses: list[tuple[int, float]] = []
    policy = HeapPolicy(lambda generation, pause: pauses.append((generation, pause)))
    policy.install()
    try:
        frozen = gc.get_freeze_count()
        gc.collect()
    finally:
        policy.remove()
    assert frozen > 0
    assert 2 in {generation for generation, _ in pauses}
    assert all(pause >= 0.0 for _, pause in pauses)
    assert 0 == gc.get_freeze_count()


def test_removing_stops_the_measurements() -> None:
    """Once removed, collections are no longer reported."""
    pauses: list[tuple[int, float]] = []
    policy = HeapPolicy(lambda generation, pause: pauses.append((generation, pause)))
    policy.install()
    policy.remove()
    pauses.clear()
    gc.collect()
    assert [] == pauses


def test_keep_frozen_freezes_new_survivors_periodically() -> None:
    """Objects made after start-up are frozen at the next interval, without a collection."""
    policy = HeapPolicy(lambda generation, pause: None, interval_s=0.01)

    async def run_two_intervals() -> int:
        task = asyncio.create_task(policy.keep_frozen())
        await asyncio.sleep(0.05)
        task.cancel()
        return gc.get_freeze_count()

    try:
        frozen = asyncio.run(run_two_intervals())
    finally:
        gc.unfreeze()
    assert frozen > 0
