"""The decision record: what it keeps, and its JSON form (the spill files' and the store's)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from fraudops.decide.log import DecisionRecord, decode_label, encode_label
from fraudops.types import Action, Decision, Label, LabelSource, Reason, Transaction

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
_ACTIONS = tuple(Action)


def make_record(number: int, **changes: Any) -> DecisionRecord:
    """A record for transaction ``tx-<number>`` with every field set to a non-default value.

    ``changes`` replace fields of the record (``features=None``, ``trace_id=None``) or, for
    names of Decision fields (``score=…``), of its decision.
    """
    transaction_id = f"tx-{number:06d}"
    tx = Transaction(
        transaction_id=transaction_id,
        timestamp=T0 + timedelta(seconds=number, microseconds=123),
        customer_id=f"card-{number % 7}",
        terminal_id=f"term-{number % 5}",
        amount=10.0 + number / 100,
        currency="EUR",
        channel="online",
        country="FR",
        merchant_category="5411",
        terminal_x=1.5 + number,
        terminal_y=None,
    )
    decision = Decision(
        transaction_id=transaction_id,
        action=_ACTIONS[number % len(_ACTIONS)],
        score=(number % 997) / 997,
        reasons=(Reason("amount", 0.25 + number / 1000), Reason("card_tx_count_1d", -0.125)),
        model_version="lgbm-2024-03-01",
        latency_ms=3.75,
        degraded=True,
        degraded_reason="champion:timeout",
        rule_hits=("high_amount", "new_terminal"),
        source="rules",
    )
    decision_fields = set(Decision.__dataclass_fields__)
    decision = replace(decision, **{k: v for k, v in changes.items() if k in decision_fields})
    record = DecisionRecord(
        decision=decision,
        transaction=tx,
        features={"amount": tx.amount, "card_tx_count_1d": float(number % 4), "risk_28d": None},
        decided_at=T0 + timedelta(seconds=number, milliseconds=4),
        trace_id=f"{number:032x}",
    )
    return replace(record, **{k: v for k, v in changes.items() if k not in decision_fields})


def make_label(number: int, source: LabelSource = LabelSource.CHARGEBACK) -> Label:
    """A label for transaction ``tx-<number>``, learnt a few days after it."""
    return Label(
        transaction_id=f"tx-{number:06d}",
        is_fraud=number % 2 == 0,
        source=source,
        known_at=T0 + timedelta(days=3, seconds=number, microseconds=456),
    )


SAMPLES = [
    make_record(1),
    make_record(2, features=None),
    make_record(3, trace_id=None, reasons=(), rule_hits=(), degraded=False, degraded_reason=None),
    make_record(4, action=Action.DECLINE, score=1.0, source="model"),
]


@pytest.mark.parametrize("record", SAMPLES)
def test_encode_then_decode_gives_back_the_same_record(record: DecisionRecord) -> None:
    """A record survives its JSON form (via orjson bytes) exactly, field for field."""
    assert record == DecisionRecord.decode(orjson.loads(orjson.dumps(record.encode())))


def test_decoded_records_hold_the_domain_types() -> None:
    """Decoding rebuilds the enum, the reason tuples and aware UTC datetimes, not raw JSON."""
    record = DecisionRecord.decode(orjson.loads(orjson.dumps(make_record(5).encode())))
    assert isinstance(record.decision.action, Action)
    assert all(isinstance(reason, Reason) for reason in record.decision.reasons)
    assert isinstance(record.decision.rule_hits, tuple)
    assert UTC.utcoffset(None) == record.decided_at.utcoffset()
    assert UTC.utcoffset(None) == record.transaction.timestamp.utcoffset()


def test_non_finite_features_are_kept_as_none() -> None:
    """NaN and infinities (which JSON cannot hold) become None; other values stay floats."""
    record = make_record(6, features={"a": math.nan, "b": math.inf, "c": 2, "d": None})
    assert {"a": None, "b": None, "c": 2.0, "d": None} == record.features
    assert isinstance(record.features["c"], float)


def test_a_record_does_not_change_when_the_callers_dict_does() -> None:
    """The record copies its features, so the caller reusing its dict cannot rewrite history."""
    features: dict[str, float | None] = {"amount": 10.0}
    record = make_record(7, features=features)
    features["amount"] = 99.0
    assert {"amount": 10.0} == record.features


def test_decided_at_is_kept_in_utc() -> None:
    """A time in another zone is kept as the same instant in UTC."""
    paris = timezone(timedelta(hours=2))
    decided_at = datetime(2024, 6, 1, 14, 0, tzinfo=paris)
    record = make_record(8, decided_at=decided_at)
    assert decided_at == record.decided_at
    assert UTC.utcoffset(None) == record.decided_at.utcoffset()


def test_a_naive_decision_time_is_refused() -> None:
    """A decision time without a zone is ambiguous, so the record refuses it."""
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(9, decided_at=datetime(2024, 6, 1, 14, 0))


def test_a_decision_about_another_transaction_is_refused() -> None:
    """The decision and the transaction must share a transaction id: it is the record's key."""
    record = make_record(10)
    with pytest.raises(ValueError, match="is not about"):
        replace(record, transaction=make_record(11).transaction)


def test_the_record_key_is_the_transaction_id() -> None:
    """``transaction_id`` is the decision's transaction id."""
    record = make_record(12)
    assert record.decision.transaction_id == record.transaction_id


@pytest.mark.parametrize("source", list(LabelSource))
def test_labels_round_trip_through_json(source: LabelSource) -> None:
    """A label survives its JSON form exactly, source enum and aware time included."""
    label = make_label(13, source)
    decoded = decode_label(orjson.loads(orjson.dumps(encode_label(label))))
    assert label == decoded
    assert isinstance(decoded.source, LabelSource)
