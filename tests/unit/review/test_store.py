"""The case store contract, over SQLite and a real PostgreSQL: schema, cases, queue, locks."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fraudops.errors import CaseClosedError, CaseNotFoundError, LockedError
from fraudops.review import _schema
from fraudops.review.cases import CaseKind, CaseOpening, CaseStatus, IntakeCursor, Verdict
from fraudops.review.database import ReviewDatabase, alembic_config, migrate
from fraudops.review.store import SqlCaseStore
from tests.unit.review.conftest import T0
from tests.unit.review.records import make_record

SLA = timedelta(hours=4)
TTL = timedelta(minutes=15)


def opening(number: int, kind: CaseKind = CaseKind.REVIEW, **fields: object) -> CaseOpening:
    """A case to open for ``make_record(number, **fields)``, due SLA after its decision."""
    record = make_record(number, **fields)  # type: ignore[arg-type]
    return CaseOpening(record, kind, record.decided_at + SLA)


def test_migrations_build_exactly_the_schema_the_code_reads(database: ReviewDatabase) -> None:
    """Comparing the migrated database with the code's table metadata finds no difference."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": _schema.VERSION_TABLE}
        )
        assert [] == compare_metadata(context, _schema.metadata)


def test_the_migrations_downgrade_to_nothing_and_back(database: ReviewDatabase) -> None:
    """Downgrading to base drops every review table; upgrading again rebuilds them."""
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert {_schema.VERSION_TABLE} == set(sa.inspect(database.engine).get_table_names())
    migrate(database.engine)
    assert set(_schema.metadata.tables) | {_schema.VERSION_TABLE} == set(
        sa.inspect(database.engine).get_table_names()
    )


def test_opening_a_migrated_database_again_changes_nothing(database: ReviewDatabase) -> None:
    """A second open runs no migration and keeps the cases already stored."""
    SqlCaseStore(database).open_cases([opening(1)], T0)
    again = ReviewDatabase(database.url)
    try:
        assert "tx-000001" == SqlCaseStore(again).get("tx-000001").transaction_id
    finally:
        again.close()


def test_an_opened_case_gives_back_its_decision_record(store: SqlCaseStore) -> None:
    """Every field of the decision record, and the case's own fields, come back as stored."""
    case_opening = opening(7, score=0.4, amount=250.0, card="card-9", terminal="term-3")
    store.open_cases([case_opening], T0 + timedelta(minutes=1))
    case = store.get("tx-000007")
    assert case_opening.record == case.record
    assert (CaseKind.REVIEW, CaseStatus.OPEN) == (case.kind, case.status)
    assert ("card-9", "term-3", 250.0, 0.4) == (
        case.card_id,
        case.terminal_id,
        case.amount,
        case.score,
    )
    assert 0.4 * 250.0 == pytest.approx(case.expected_loss)
    assert (case_opening.record.decided_at, T0 + timedelta(minutes=1)) == (
        case.decided_at,
        case.opened_at,
    )
    assert case_opening.due_at == case.due_at


def test_opening_is_idempotent_by_transaction_id(store: SqlCaseStore) -> None:
    """Opening a transaction again opens nothing and keeps the first case."""
    assert ["tx-000001", "tx-000002"] == store.open_cases([opening(1), opening(2)], T0)
    again = opening(1, score=0.99)
    assert [] == store.open_cases([again, again], T0 + timedelta(hours=1))
    assert 0.5 == store.get("tx-000001").score
    assert T0 == store.get("tx-000001").opened_at


def test_a_missing_case_is_an_error_naming_it(store: SqlCaseStore) -> None:
    """Reading a transaction without a case raises CaseNotFoundError with its id (404)."""
    with pytest.raises(CaseNotFoundError, match="tx-404") as raised:
        store.get("tx-404")
    assert 404 == raised.value.http_status


def test_queue_groups_cards_ordered_by_their_costliest_case(store: SqlCaseStore) -> None:
    """Groups come by max score × amount; a card's cases come together, costliest first."""
    store.open_cases(
        [
            opening(1, card="a", score=0.5, amount=100.0),  # 50
            opening(2, card="b", score=0.9, amount=100.0),  # 90
            opening(3, card="a", score=0.2, amount=1000.0),  # 200: card a's max
            opening(4, card="c", score=0.3, amount=10.0),  # 3
            opening(5, card="b", score=0.1, amount=10.0),  # 1
        ],
        T0,
    )
    groups = store.queue()
    assert ["a", "b", "c"] == [group.card_id for group in groups]
    assert [["tx-000003", "tx-000001"], ["tx-000002", "tx-000005"], ["tx-000004"]] == [
        [case.transaction_id for case in group.cases] for group in groups
    ]
    assert 200.0 == pytest.approx(groups[0].max_expected_loss)


def test_queue_pages_in_whole_groups(store: SqlCaseStore) -> None:
    """limit_groups returns that many cards with all their cases."""
    store.open_cases(
        [opening(n, card=f"card-{n % 3}", amount=100.0 + n) for n in range(9)],
        T0,
    )
    first = store.queue(limit_groups=2)
    rest = store.queue(limit_groups=2, offset_groups=2)
    assert [3, 3] == [len(group.cases) for group in first]
    assert {"card-0", "card-1", "card-2"} == {g.card_id for g in first + rest}
    assert 1 == len(rest)


def test_queue_filters_by_status_and_kind(store: SqlCaseStore) -> None:
    """Closed cases leave the queue; statuses and kinds select what a view shows."""
    store.open_cases(
        [opening(1), opening(2), opening(3, kind=CaseKind.AUDIT_SAMPLE), opening(4)], T0
    )
    store.record_verdict("tx-000001", Verdict.FRAUD, "ann", "", T0, may_resolve_escalated=False)
    store.record_verdict("tx-000002", Verdict.ESCALATE, "ann", "?", T0, may_resolve_escalated=False)

    def ids(**filters: object) -> list[str]:
        groups = store.queue(**filters)  # type: ignore[arg-type]
        return sorted(case.transaction_id for group in groups for case in group.cases)

    assert ["tx-000003", "tx-000004"] == ids()
    assert ["tx-000002"] == ids(statuses=[CaseStatus.ESCALATED])
    assert ["tx-000003"] == ids(kinds=[CaseKind.AUDIT_SAMPLE])


def test_stats_count_waiting_overdue_and_todays_inflow(store: SqlCaseStore) -> None:
    """Open, escalated, overdue (past due_at) and today's review inflow are counted."""
    yesterday = T0 - timedelta(days=1)
    store.open_cases(
        [
            opening(1, decided_at=yesterday),  # overdue by now
            opening(2),
            opening(3),
            opening(4, kind=CaseKind.AUDIT_SAMPLE),  # not review inflow
        ],
        T0,
    )
    store.record_verdict("tx-000003", Verdict.ESCALATE, "ann", "?", T0, may_resolve_escalated=False)
    stats = store.stats(T0 + timedelta(hours=1))
    assert (2, 1, 1, yesterday) == (
        stats.open - 1,  # the audit sample is open too
        stats.escalated,
        stats.overdue,
        stats.oldest_decided_at,
    )
    assert 2 == stats.opened_today


def test_stats_count_the_cards_of_each_queue(store: SqlCaseStore) -> None:
    """Cards with an open case and cards with an escalated one, each card once."""
    store.open_cases(
        [opening(1, card="card-a"), opening(2, card="card-a"), opening(3, card="card-b")], T0
    )
    store.record_verdict("tx-000003", Verdict.ESCALATE, "ann", "?", T0, may_resolve_escalated=False)
    stats = store.stats(T0)
    assert (1, 1) == (stats.open_cards, stats.escalated_cards)


def test_sla_clock_runs_from_the_decision(store: SqlCaseStore) -> None:
    """A case is overdue once its decision is older than the SLA, and not before."""
    store.open_cases([opening(0)], T0 + timedelta(hours=3))  # opened late, due all the same
    case = store.get("tx-000000")
    assert not case.overdue(T0 + SLA)
    assert case.overdue(T0 + SLA + timedelta(seconds=1))
    assert timedelta(hours=1) == case.time_left(T0 + timedelta(hours=3))


def test_a_locked_case_refuses_another_analyst_and_says_who(store: SqlCaseStore) -> None:
    """While ann holds the lock, bob gets LockedError naming ann and the expiry (409)."""
    store.open_cases([opening(1)], T0)
    store.lock("tx-000001", "ann", T0, TTL)
    with pytest.raises(LockedError, match="ann") as raised:
        store.lock("tx-000001", "bob", T0 + timedelta(minutes=1), TTL)
    assert ("ann", T0 + TTL, 409) == (
        raised.value.holder,
        raised.value.until,
        raised.value.http_status,
    )
    with pytest.raises(LockedError):
        store.record_verdict("tx-000001", Verdict.FRAUD, "bob", "", T0, may_resolve_escalated=True)


def test_a_lock_expires_and_can_be_renewed_or_released(store: SqlCaseStore) -> None:
    """The holder renews; after expiry or release another analyst can take it."""
    store.open_cases([opening(1), opening(2)], T0)
    store.lock("tx-000001", "ann", T0, TTL)
    renewed = store.lock("tx-000001", "ann", T0 + timedelta(minutes=10), TTL)
    assert T0 + timedelta(minutes=25) == renewed.locked_until
    assert "bob" == store.lock("tx-000001", "bob", T0 + timedelta(minutes=26), TTL).locked_by
    store.lock("tx-000002", "ann", T0, TTL)
    store.unlock("tx-000002", "bob")  # not bob's to release: nothing happens
    assert "ann" == store.get("tx-000002").locked_by
    store.unlock("tx-000002", "ann")
    assert "bob" == store.lock("tx-000002", "bob", T0, TTL).locked_by


def test_a_closed_case_cannot_be_locked(store: SqlCaseStore) -> None:
    """Locking a closed case raises CaseClosedError saying how it was closed."""
    store.open_cases([opening(1)], T0)
    store.record_verdict(
        "tx-000001", Verdict.LEGITIMATE, "ann", "", T0, may_resolve_escalated=False
    )
    with pytest.raises(CaseClosedError, match="legitimate by 'ann'"):
        store.lock("tx-000001", "bob", T0, TTL)


def test_claim_next_gives_two_analysts_different_cases(store: SqlCaseStore) -> None:
    """ann claims the top case; bob, claiming next, gets the second; none left is None."""
    store.open_cases([opening(1, score=0.9), opening(2, score=0.1, card="card-2")], T0)
    ann = store.claim_next("ann", T0, TTL)
    bob = store.claim_next("bob", T0, TTL)
    assert ("tx-000001", "tx-000002") == (
        ann.transaction_id if ann else None,
        bob.transaction_id if bob else None,
    )
    assert store.claim_next("cy", T0, TTL) is None


def test_claim_next_leaves_a_card_to_the_analyst_working_it(store: SqlCaseStore) -> None:
    """While ann holds one of card a's cases, bob is given card b, not a's other case."""
    store.open_cases(
        [
            opening(1, card="a", score=0.9),
            opening(2, card="a", score=0.8),
            opening(3, card="b", score=0.1),
        ],
        T0,
    )
    store.lock("tx-000001", "ann", T0, TTL)
    bob = store.claim_next("bob", T0, TTL)
    assert "tx-000003" == (bob.transaction_id if bob else None)


def test_two_analysts_locking_at_once_cannot_both_win(store: SqlCaseStore) -> None:
    """Of many concurrent lock attempts by different analysts, exactly one succeeds."""
    store.open_cases([opening(1)], T0)
    winners: list[str] = []
    losers: list[str] = []
    start = threading.Barrier(4)

    def attempt(user: str) -> None:
        start.wait()
        try:
            store.lock("tx-000001", user, T0, TTL)
            winners.append(user)
        except LockedError as exc:
            losers.append(exc.holder)

    threads = [threading.Thread(target=attempt, args=(f"analyst-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 == len(winners)
    assert [winners[0]] * 3 == losers


def test_the_intake_cursor_is_saved_and_replaced(store: SqlCaseStore) -> None:
    """A saved cursor reads back as saved; saving again replaces it."""
    assert store.cursor("decisions") is None
    first = IntakeCursor(T0, "tx-000001")
    store.save_cursor("decisions", first, T0)
    assert first == store.cursor("decisions")
    second = IntakeCursor(T0 + timedelta(seconds=5), "tx-000009")
    store.save_cursor("decisions", second, T0)
    assert second == store.cursor("decisions")


def test_the_database_refuses_to_change_or_delete_audit_rows(database: ReviewDatabase) -> None:
    """Below the code, the audit table itself rejects UPDATE and DELETE."""
    store = SqlCaseStore(database)
    store.open_cases([opening(1)], T0)
    store.record_verdict("tx-000001", Verdict.FRAUD, "ann", "", T0, may_resolve_escalated=False)
    for statement in ("UPDATE review_audit SET actor = 'mallory'", "DELETE FROM review_audit"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), database.engine.begin() as c:
            c.execute(sa.text(statement))
    with database.engine.connect() as connection:
        actors = connection.execute(sa.text("SELECT actor FROM review_audit")).scalars().all()
    assert ["ann"] == actors


def test_concurrent_intakes_open_each_case_once(store: SqlCaseStore) -> None:
    """Two intakes opening overlapping batches at once report each new case exactly once."""
    batches = [[opening(n) for n in range(0, 30)], [opening(n) for n in range(15, 45)]]
    reported: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def run(index: int) -> None:
        start.wait()
        reported[index] = store.open_cases(batches[index], T0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(f"tx-{n:06d}" for n in range(45)) == sorted(reported[0] + reported[1])
