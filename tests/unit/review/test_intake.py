"""Cases from decisions: the audit sample, the decision-log reader and the intake worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url

from fraudops.clock import ManualClock
from fraudops.decide.log import SqlDecisionStore
from fraudops.errors import StoreError
from fraudops.review.cases import CaseKind, CaseStatus, IntakeCursor
from fraudops.review.database import ReviewDatabase
from fraudops.review.decisions import SqlDecisionReader
from fraudops.review.intake import CaseIntake, audit_sampled, case_openings
from fraudops.review.store import SqlCaseStore
from fraudops.types import Action
from tests.faults import TcpProxy
from tests.services import postgres_schema_url
from tests.unit.review.conftest import T0
from tests.unit.review.records import make_record

SLA = timedelta(hours=4)
RATE = 0.002


def sampled_id(rate: float, *, inside: bool) -> str:
    """The first id ``tx-<n>`` that is (or is not) in the audit sample at ``rate``."""
    return next(
        f"tx-{n:06d}" for n in range(100_000) if audit_sampled(f"tx-{n:06d}", rate) is inside
    )


def test_the_audit_sample_rate_is_close_to_the_configured_one() -> None:
    """Over 200 000 ids, the share sampled at 0.2 % is within four standard deviations."""
    n = 200_000
    sampled = sum(audit_sampled(f"txn-{i}", RATE) for i in range(n))
    sd = (n * RATE * (1 - RATE)) ** 0.5
    assert abs(sampled - n * RATE) < 4 * sd


def test_the_audit_sample_is_the_same_every_time() -> None:
    """The same id is sampled, or not, on every call: replays and replicas agree."""
    ids = [f"tx-{i}" for i in range(5000)]
    assert [audit_sampled(i, 0.05) for i in ids] == [audit_sampled(i, 0.05) for i in ids]


def test_rates_zero_and_one_sample_nothing_and_everything() -> None:
    """A rate of 0 samples no approval and a rate of 1 samples every one."""
    ids = [f"tx-{i}" for i in range(1000)]
    assert (0, 1000) == (
        sum(audit_sampled(i, 0.0) for i in ids),
        sum(audit_sampled(i, 1.0) for i in ids),
    )


def test_reviews_and_sampled_approvals_open_cases_declines_do_not() -> None:
    """Each review opens a review case, a sampled approval an audit-sample case, due SLA on."""
    inside = int(sampled_id(RATE, inside=True)[3:])
    outside = int(sampled_id(RATE, inside=False)[3:])
    records = [
        make_record(inside, action=Action.APPROVE),
        make_record(outside, action=Action.APPROVE),
        make_record(1, action=Action.REVIEW),
        make_record(2, action=Action.DECLINE),
    ]
    openings = case_openings(records, audit_sample_rate=RATE, sla=SLA)
    assert [
        (records[0].transaction_id, CaseKind.AUDIT_SAMPLE),
        ("tx-000001", CaseKind.REVIEW),
    ] == [(o.record.transaction_id, o.kind) for o in openings]
    assert records[2].decided_at + SLA == openings[1].due_at


def test_the_reader_gives_back_what_the_decision_log_wrote(
    sql_url: str, clock: ManualClock
) -> None:
    """Records read back equal, in the order written (a batch by id), with their write time."""
    log = SqlDecisionStore(sql_url, now=clock.now)
    first = [make_record(n, source="rules" if n % 2 else "model") for n in (3, 1)]
    log.write(first)
    clock.advance(timedelta(seconds=1))
    log.write([make_record(2)])
    reader = SqlDecisionReader(sql_url)
    try:
        logged = reader.since(None, 10)
        assert [first[1], first[0], make_record(2)] == [entry.record for entry in logged]
        assert [T0, T0, T0 + timedelta(seconds=1)] == [entry.logged_at for entry in logged]
    finally:
        reader.close()
        log.close()


def test_the_reader_resumes_after_its_cursor_and_stops_before_a_time(
    tmp_path: Path, clock: ManualClock
) -> None:
    """since() returns records written strictly after the cursor and before ``before``."""
    url = f"sqlite:///{tmp_path}/decisions.db"
    log = SqlDecisionStore(url, now=clock.now)
    log.write([make_record(n) for n in (1, 2, 3)])
    clock.advance(timedelta(seconds=9))
    log.write([make_record(9)])
    reader = SqlDecisionReader(url)
    after_first = reader.since(IntakeCursor(T0, "tx-000001"), 10)
    before_nine = reader.since(None, 10, before=T0 + timedelta(seconds=9))
    assert ["tx-000002", "tx-000003", "tx-000009"] == [
        entry.record.transaction_id for entry in after_first
    ]
    assert ["tx-000001", "tx-000002", "tx-000003"] == [
        entry.record.transaction_id for entry in before_nine
    ]
    reader.close()
    log.close()


def test_the_reader_reads_a_window_of_decision_times_in_pages(tmp_path: Path) -> None:
    """decided_in() pages through ``[start, end)`` by decision time, whenever written."""
    url = f"sqlite:///{tmp_path}/decisions.db"
    log = SqlDecisionStore(url)
    same_time = T0 + timedelta(seconds=2)
    log.write([make_record(9), make_record(3, decided_at=same_time)])
    log.write([make_record(n, decided_at=same_time) for n in (2, 1)] + [make_record(5)])
    reader = SqlDecisionReader(url)
    start, end = T0 + timedelta(seconds=2), T0 + timedelta(seconds=9)
    first_page = reader.decided_in(start, end, None, 2)
    second_page = reader.decided_in(start, end, first_page[-1].transaction_id, 2)
    assert [["tx-000001", "tx-000002"], ["tx-000003", "tx-000005"]] == [
        [r.transaction_id for r in page] for page in (first_page, second_page)
    ]
    reader.close()
    log.close()


def test_the_reader_gives_a_card_history_and_model_scores(tmp_path: Path) -> None:
    """card_history is the card's latest decisions first; model_scores skips fallbacks."""
    url = f"sqlite:///{tmp_path}/decisions.db"
    log = SqlDecisionStore(url)
    log.write(
        [
            make_record(1, card="a", score=0.1),
            make_record(2, card="b", score=0.2, source="rules"),
            make_record(3, card="a", score=0.3),
        ]
    )
    reader = SqlDecisionReader(url)
    history = reader.card_history("a", before=T0 + timedelta(hours=1))
    scores = reader.model_scores(T0, T0 + timedelta(hours=1))
    assert ["tx-000003", "tx-000001"] == [r.transaction_id for r in history]
    assert [0.1, 0.3] == sorted(scores.tolist())
    reader.close()
    log.close()


class Intake:
    """A decision log, a case store and the intake between them, on SQLite files."""

    def __init__(self, root: Path, clock: ManualClock, case_url: str | None = None) -> None:
        self.log = SqlDecisionStore(f"sqlite:///{root}/decisions.db", now=clock.now)
        self.reader = SqlDecisionReader(f"sqlite:///{root}/decisions.db")
        self.database = ReviewDatabase(case_url or f"sqlite:///{root}/review.db")
        self.store = SqlCaseStore(self.database)
        self.intake = CaseIntake(
            self.reader,
            self.store,
            clock,
            audit_sample_rate=RATE,
            sla=SLA,
            settle=timedelta(seconds=30),
            batch_size=2,
        )

    def close(self) -> None:
        self.reader.close()
        self.log.close()
        self.database.close()


def test_the_intake_opens_cases_and_resumes_after_a_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Reviews become cases batch by batch; a new intake on the same store reads nothing again."""
    setup = Intake(tmp_path, clock)
    setup.log.write([make_record(n, action=Action.REVIEW) for n in range(1, 6)])
    setup.log.write([make_record(6, action=Action.DECLINE)])
    clock.advance(timedelta(minutes=5))
    report = setup.intake.drain()
    assert (6, 5) == (report.read, report.opened)
    assert IntakeCursor(T0, "tx-000006") == setup.store.cursor("decisions")
    restarted = Intake(tmp_path, clock)
    assert (0, 0) == (restarted.intake.drain().read, setup.store.stats(clock.now()).escalated)
    assert 5 == setup.store.stats(clock.now()).open
    setup.close()
    restarted.close()


def test_the_intake_waits_for_records_to_settle(tmp_path: Path, clock: ManualClock) -> None:
    """A record written less than the settle time ago is left for a later pass, however
    long ago it was decided."""
    setup = Intake(tmp_path, clock)
    setup.log.write([make_record(1, decided_at=clock.now() - timedelta(minutes=10))])
    clock.advance(timedelta(seconds=25))
    assert 0 == setup.intake.run_once().read
    clock.advance(timedelta(seconds=10))
    assert 1 == setup.intake.run_once().opened
    setup.close()


def test_a_decision_written_late_still_gets_its_case(tmp_path: Path, clock: ManualClock) -> None:
    """A decision that reaches the log after the cursor passed its decision time (replayed
    from the spill files after an outage) is opened by the next pass, with no backfill."""
    setup = Intake(tmp_path, clock)
    setup.log.write([make_record(10)])
    clock.advance(timedelta(minutes=5))
    assert (1, 1) == (setup.intake.drain().read, setup.store.stats(clock.now()).open)
    setup.log.write([make_record(5)])  # decided at T0 + 5 s, written 5 minutes later
    clock.advance(timedelta(minutes=1))
    report = setup.intake.drain()
    assert (1, 1) == (report.read, report.opened)
    assert CaseStatus.OPEN == setup.store.get("tx-000005").status
    setup.close()


def test_backfill_opens_the_cases_of_a_window_again(tmp_path: Path, clock: ManualClock) -> None:
    """A backfill reads every decision made in its window, leaves the cursor, and opens only
    what is not open yet."""
    setup = Intake(tmp_path, clock)
    setup.log.write([make_record(n) for n in (1, 2, 3)] + [make_record(90)])
    clock.advance(timedelta(minutes=5))
    setup.intake.drain()
    cursor = setup.store.cursor("decisions")
    report = setup.intake.backfill(T0, T0 + timedelta(minutes=1))
    assert (3, 0, cursor) == (report.read, report.opened, setup.store.cursor("decisions"))
    setup.close()


@pytest.fixture
def proxied_case_url() -> Iterator[tuple[TcpProxy, str]]:
    """A private PostgreSQL schema for the case store, reached through a cuttable proxy."""
    with postgres_schema_url() as url:
        target = make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            yield proxy, proxy.url_for(url)


def test_cases_appear_once_the_case_store_returns(
    tmp_path: Path, clock: ManualClock, proxied_case_url: tuple[TcpProxy, str]
) -> None:
    """With the case store cut off from the start, the intake fails loudly and loses nothing."""
    proxy, url = proxied_case_url
    proxy.cut()
    setup = Intake(tmp_path, clock, case_url=url)  # opens although the database is down
    setup.log.write([make_record(n) for n in range(1, 4)])
    clock.advance(timedelta(minutes=5))
    with pytest.raises(StoreError, match="review store"):
        setup.intake.drain()
    proxy.restore()
    assert (3, 3) == (setup.intake.drain().read, setup.store.stats(clock.now()).open)
    setup.close()


def test_the_running_worker_outlives_an_outage(
    tmp_path: Path, clock: ManualClock, proxied_case_url: tuple[TcpProxy, str]
) -> None:
    """run() keeps going through a case-store outage and opens the cases once it ends."""
    proxy, url = proxied_case_url
    setup = Intake(tmp_path, clock, case_url=url)
    setup.log.write([make_record(n) for n in range(1, 4)])
    clock.advance(timedelta(minutes=5))
    proxy.cut()
    stop = threading.Event()
    worker = threading.Thread(
        target=setup.intake.run, args=(stop,), kwargs={"interval_s": 0.01, "max_backoff_s": 0.05}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while setup.intake.consecutive_failures < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        failing = (setup.intake.consecutive_failures >= 2, setup.intake.last_error or "")
        proxy.restore()
        deadline = time.monotonic() + 10
        while setup.store.stats(clock.now()).open < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert (True, True) == (failing[0], "review store" in failing[1])
    assert (3, False, 0) == (
        setup.store.stats(clock.now()).open,
        worker.is_alive(),
        setup.intake.consecutive_failures,
    )
    setup.close()
