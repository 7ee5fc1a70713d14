"""The audit trail: recorded entries, filters, exports, and no way to change the past."""

from __future__ import annotations

import csv
import inspect
import io
from datetime import timedelta

import orjson
import pytest

from fraudops.errors import InputError
from fraudops.review.audit import AuditAction, AuditEntry, AuditTrail, SqlAuditTrail
from tests.unit.review.conftest import T0


def entry(minutes: int, actor: str = "lea", **fields: object) -> AuditEntry:
    """An entry ``minutes`` after T0."""
    values: dict[str, object] = {
        "at": T0 + timedelta(minutes=minutes),
        "actor": actor,
        "action": AuditAction.PROMOTION,
        "subject": "model v7",
        "reason": "AP 0.74 vs 0.72 on the last two weeks",
        "details": {"from": "v6", "to": "v7"},
    }
    values.update(fields)
    return AuditEntry(**values)  # type: ignore[arg-type]


def test_recorded_entries_read_back_with_growing_ids(audit: SqlAuditTrail) -> None:
    """Each entry comes back as recorded, with an id larger than the one before."""
    first = audit.record(entry(0))
    second = audit.record(entry(1, actor="system:retrain", action=AuditAction.MODEL_CHANGE))
    assert (first.id or 0) < (second.id or 0)
    assert [first, second] == audit.entries()


def test_entries_filter_by_time_actor_action_and_subject(audit: SqlAuditTrail) -> None:
    """Each filter narrows the entries; after_id pages through them."""
    recorded = [
        audit.record(entry(0)),
        audit.record(entry(5, actor="ada", action=AuditAction.ROLLBACK)),
        audit.record(entry(10, subject="policy", action=AuditAction.THRESHOLD_CHANGE)),
    ]
    assert recorded[1:] == audit.entries(since=T0 + timedelta(minutes=5))
    assert [recorded[1]] == audit.entries(actor="ada")
    assert [recorded[2]] == audit.entries(subject="policy")
    assert [recorded[0]] == audit.entries(action=AuditAction.PROMOTION)
    assert [recorded[1]] == audit.entries(after_id=recorded[0].id, limit=1)


def test_export_as_json_lines_gives_every_entry(audit: SqlAuditTrail) -> None:
    """The JSON-lines export is one object per entry, in order, from ``since``."""
    for minutes in range(3):
        audit.record(entry(minutes))
    lines = "".join(audit.export("jsonl", since=T0 + timedelta(minutes=1))).splitlines()
    assert [(T0 + timedelta(minutes=m)).isoformat() for m in (1, 2)] == [
        orjson.loads(line)["at"] for line in lines
    ]


def test_export_as_csv_has_a_header_and_neutralises_formulas(audit: SqlAuditTrail) -> None:
    """The CSV export reads back with its header; a note starting with = stays text."""
    audit.record(entry(0, reason="=HYPERLINK('http://x')"))
    rows = list(csv.DictReader(io.StringIO("".join(audit.export("csv")))))
    assert ["'=HYPERLINK('http://x')"] == [row["reason"] for row in rows]
    assert {"from": "v6", "to": "v7"} == orjson.loads(rows[0]["details"])


def test_the_trail_offers_no_way_to_change_or_remove_an_entry() -> None:
    """The public methods of the trail and its Protocol are record, entries and export."""

    def public(cls: type) -> set[str]:
        return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}

    assert {"record", "entries", "export"} == public(SqlAuditTrail) == public(AuditTrail)


def test_an_entry_needs_an_actor_and_a_subject() -> None:
    """An entry without an actor or subject is refused before it is recorded."""
    with pytest.raises(InputError, match="actor"):
        entry(0, actor=" ")
    with pytest.raises(InputError, match="subject"):
        entry(0, subject="")
