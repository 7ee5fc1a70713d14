"""What validating one transaction body costs on the hot path; prints JSON.

The API parses and checks each ``POST /v1/transactions`` body with one pydantic adapter
(``fraudops.api.routes._TRANSACTION``) before anything else runs. This times that call on a
typical body, beside ``orjson.loads`` of the same bytes in the same run (the floor any
parse pays), and reports the median of the rounds. To compare two commits, run it under
each one's source tree (``PYTHONPATH=W/src``) in turn, a few times each.

    .venv/bin/python bench/validation.py [--rounds 5] [--number 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable

import orjson

from fraudops.api.routes import _TRANSACTION

BODY = orjson.dumps(
    {
        "transaction_id": "1234567",
        "timestamp": "2018-09-01T10:00:00+00:00",
        "customer_id": "4321",
        "terminal_id": "8765",
        "amount": 42.5,
        "terminal_x": 12.5,
        "terminal_y": 80.1,
    }
)


def _median_us(call: Callable[[], object], rounds: int, number: int) -> float:
    """The median over ``rounds`` of the best of 3 timings, in µs per call."""
    timings = [
        min(timeit.repeat(call, number=number, repeat=3)) / number * 1e6 for _ in range(rounds)
    ]
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    validate_us = _median_us(lambda: _TRANSACTION.validate_json(BODY), args.rounds, args.number)
    parse_us = _median_us(lambda: orjson.loads(BODY), args.rounds, args.number)
    print(
        json.dumps(
            {
                "validate_us": round(validate_us, 3),
                "json_parse_us": round(parse_us, 3),
                "validate_over_parse": round(validate_us / parse_us, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
