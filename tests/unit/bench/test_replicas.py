"""bench/replicas.py: the retries it mixes into the load, and the ids it accounts for."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson

from replicas import Sent


def _bodies() -> Iterator[bytes]:
    for n in itertools.count():
        yield orjson.dumps({"transaction_id": f"t{n}", "amount": 1.0})


def test_retries_repeat_recent_bodies_and_every_id_is_counted_once() -> None:
    """About the asked share of requests repeats one of the last few; ids are distinct."""
    sent = Sent(_bodies(), retry_share=0.1, seed=3)
    requests = [next(sent) for _ in range(5000)]
    ids = [orjson.loads(body)["transaction_id"] for body in requests]
    repeats = len(ids) - len(set(ids))
    assert repeats == sent.retries
    assert 400 <= sent.retries <= 600
    assert {i.encode() for i in ids} == sent.ids
    first_seen = {i: ids.index(i) for i in set(ids)}
    assert all(n - first_seen[i] <= 40 for n, i in enumerate(ids))
