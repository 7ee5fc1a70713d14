"""The buffered decision log: the decision path never waits, and no accepted record is lost."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from fraudops.decide.log import DecisionRecord, SqlDecisionStore
from fraudops.decide.log_buffer import BufferedDecisionLog
from fraudops.errors import StoreError
from fraudops.types import Label
from tests.faults import TcpProxy
from tests.services import postgres_schema_url
from tests.unit.decide.test_log_record import make_label, make_record

# Far longer than any append can take unless it waits on the store (which hangs for ever).
NOT_BLOCKED_S = 0.5
# How long a test waits for the flush thread before calling it a failure.
PATIENCE_S = 10.0


class FaultyStore:
    """A real SQLite store whose writes (and reads) can be made to fail or to hang."""

    def __init__(self, path: Path) -> None:
        self.inner = SqlDecisionStore(f"sqlite:///{path}")
        self.failing = False
        self.batches: list[int] = []
        self.hanging = threading.Event()  # entered by a write that now hangs
        self._hang = False
        self._release = threading.Event()

    def hang(self) -> None:
        """Make the next writes block until :meth:`release`."""
        self._hang = True
        self._release.clear()

    def release(self) -> None:
        """Let hanging writes go on."""
        self._hang = False
        self._release.set()

    def write(self, decisions: Sequence[DecisionRecord], labels: Sequence[Label] = ()) -> None:
        if self._hang:
            self.hanging.set()
            self._release.wait()
        if self.failing:
            raise StoreError("injected outage")
        self.inner.write(decisions, labels)
        self.batches.append(len(decisions) + len(labels))

    def get(self, transaction_id: str) -> DecisionRecord | None:
        if self.failing:
            raise StoreError("injected outage")
        return self.inner.get(transaction_id)

    def count(self) -> int:
        return self.inner.count()

    def ping(self) -> None:
        if self.failing:
            raise StoreError("injected outage")

    def close(self) -> None:
        self.inner.close()


@dataclass
class Calls:
    """What the log reported through its callbacks."""

    depths: list[int] = field(default_factory=list)
    spilled: list[int] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    error_seen: threading.Event = field(default_factory=threading.Event)
    written_seen: threading.Event = field(default_factory=threading.Event)

    def on_flush_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.error_seen.set()

    def on_written(self, count: int) -> None:
        self.written.append(count)
        self.written_seen.set()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FaultyStore]:
    """A store that works until told otherwise."""
    store = FaultyStore(tmp_path / "db" / "decisions.db")
    yield store
    store.release()
    store.close()


@pytest.fixture
def spill_dir(tmp_path: Path) -> Path:
    """Where the logs under test spill."""
    return tmp_path / "spill"


@pytest.fixture
def make_log(spill_dir: Path) -> Iterator[Callable[..., tuple[BufferedDecisionLog, Calls]]]:
    """Builds logs (with small bounds) that record their callbacks; closes them after."""
    logs: list[BufferedDecisionLog] = []

    def build(store: Any, **options: Any) -> tuple[BufferedDecisionLog, Calls]:
        calls = Calls()
        settings: dict[str, Any] = {
            "buffer_size": 100,
            "batch_size": 10,
            "flush_interval_s": 0.02,
            "spill_dir": spill_dir,
            "on_depth": calls.depths.append,
            "on_spill": calls.spilled.append,
            "on_flush_error": calls.on_flush_error,
            "on_written": calls.on_written,
        }
        log = BufferedDecisionLog(store, **(settings | options))
        logs.append(log)
        return log, calls

    yield build
    for log in logs:
        log.close(timeout_s=0.5)


def spilled_lines(spill_dir: Path) -> int:
    """How many records the spill files hold."""
    return sum(len(path.read_bytes().splitlines()) for path in spill_dir.glob("*.jsonl"))


def test_append_returns_at_once_while_the_store_hangs(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """With the flush thread stuck in a hung write, appends still return immediately."""
    log, _ = make_log(store)
    store.hang()
    log.start()
    records = [make_record(number) for number in range(300)]
    log.append(records[0])
    assert store.hanging.wait(PATIENCE_S)
    slowest = 0.0
    for record in records[1:]:
        started = time.perf_counter()
        log.append(record)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < NOT_BLOCKED_S
    assert len(records) == log.depth + log.spilled
    store.release()
    assert log.flush(PATIENCE_S)
    assert len(records) == store.count()


def test_overflow_goes_to_disk_and_raises_the_alarm(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]], spill_dir: Path
) -> None:
    """Past buffer_size, records are spilled to disk and on_spill counts each one."""
    buffer_size, appended = 10, 25
    log, calls = make_log(store, buffer_size=buffer_size)
    store.failing = True
    log.start()
    for number in range(appended):
        log.append(make_record(number))
    assert buffer_size == log.depth
    assert appended - buffer_size == log.spilled
    assert appended - buffer_size == sum(calls.spilled)
    assert appended - buffer_size == spilled_lines(spill_dir)
    assert buffer_size == calls.depths[-1]


def test_an_outage_then_recovery_writes_every_record_once(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]], spill_dir: Path
) -> None:
    """Records and labels accepted during an outage (buffered or spilled) all land, once."""
    log, calls = make_log(store, buffer_size=50)
    store.failing = True
    log.start()
    records = [make_record(number) for number in range(300)]
    labels = [make_label(number) for number in range(0, 300, 15)]
    for number, record in enumerate(records):
        log.append(record)
        if number % 15 == 0:
            log.append_label(labels[number // 15])
    assert calls.error_seen.wait(PATIENCE_S)
    assert all(isinstance(error, StoreError) for error in calls.errors)
    store.failing = False
    assert log.flush(PATIENCE_S)
    assert len(records) == store.count()
    assert len(records) + len(labels) == sum(calls.written)
    assert (0, 0) == (log.depth, log.spilled)
    assert [] == list(spill_dir.glob("*.jsonl"))
    assert records == [store.inner.get(record.transaction_id) for record in records]
    assert labels == [store.inner.labels(label.transaction_id)[0] for label in labels]


def test_records_are_written_in_batches_of_at_most_batch_size(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """Waiting records are written batch_size at a time, the remainder last."""
    batch_size, appended = 10, 35
    log, _ = make_log(store, batch_size=batch_size, flush_interval_s=60.0)
    for number in range(appended):
        log.append(make_record(number))
    log.start()
    assert log.flush(PATIENCE_S)
    full, rest = divmod(appended, batch_size)
    assert [batch_size] * full + [rest] == store.batches


def test_the_thread_writes_after_the_interval_unasked(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """A part batch is written when the flush interval passes, with no flush() call."""
    log, calls = make_log(store, batch_size=10, flush_interval_s=0.05)
    log.start()
    for number in range(3):
        log.append(make_record(number))
    assert calls.written_seen.wait(PATIENCE_S)
    assert 3 == store.count()


def test_a_full_batch_is_written_before_the_interval(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """Reaching batch_size wakes the thread at once, long before a one-minute interval."""
    batch_size = 10
    log, calls = make_log(store, batch_size=batch_size, flush_interval_s=60.0)
    log.start()
    for number in range(batch_size):
        log.append(make_record(number))
    # The thread may take a first part of the batch while appends are still arriving, so
    # wait for the whole batch; the one-minute interval could never deliver it in time.
    give_up = time.monotonic() + PATIENCE_S
    while store.count() < batch_size and time.monotonic() < give_up:
        calls.written_seen.wait(0.01)
    assert batch_size == store.count()


def test_flush_is_false_while_the_store_stays_down(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """flush() reports that records are still waiting when the store does not take them."""
    log, _ = make_log(store)
    store.failing = True
    log.start()
    for number in range(5):
        log.append(make_record(number))
    assert not log.flush(timeout_s=0.2)
    assert 5 == log.depth


def test_get_finds_records_in_memory_on_disk_and_in_the_store(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """get() serves buffered and spilled records without the store, and stored ones from it."""
    log, _ = make_log(store, buffer_size=5)
    store.failing = True  # get() from the store would raise, so these come from the log
    log.start()
    records = [make_record(number) for number in range(8)]
    for record in records:
        log.append(record)
    assert (5, 3) == (log.depth, log.spilled)
    assert records == [log.get(record.transaction_id) for record in records]
    store.failing = False
    assert log.flush(PATIENCE_S)
    assert records == [log.get(record.transaction_id) for record in records]
    assert log.get("never-seen") is None


def test_get_raises_when_it_must_ask_a_failing_store(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """A record in neither memory nor disk needs the store, whose failure propagates."""
    log, _ = make_log(store)
    store.failing = True
    with pytest.raises(StoreError):
        log.get("never-seen")


def test_close_with_the_store_down_spills_and_a_later_start_writes(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]], spill_dir: Path
) -> None:
    """Closing during an outage puts what memory holds on disk; the next run writes it."""
    log, calls = make_log(store)
    store.failing = True
    log.start()
    records = [make_record(number) for number in range(30)]
    for record in records:
        log.append(record)
    log.close(timeout_s=PATIENCE_S)
    assert (0, len(records)) == (log.depth, log.spilled)
    assert len(records) == sum(calls.spilled)
    assert len(records) == spilled_lines(spill_dir)
    store.failing = False
    successor, _ = make_log(store)
    successor.start()
    assert len(records) == successor.spilled
    assert successor.flush(PATIENCE_S)
    assert len(records) == store.count()
    assert [] == list(spill_dir.glob("*.jsonl"))


def test_close_spills_what_a_hung_write_holds(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """close() spills what a hung write holds in time; its late write and the replay store once."""
    log, _ = make_log(store, batch_size=10)
    store.hang()
    log.start()
    records = [make_record(number) for number in range(20)]
    for record in records:
        log.append(record)
    assert store.hanging.wait(PATIENCE_S)
    started = time.perf_counter()
    log.close(timeout_s=0.2)
    assert time.perf_counter() - started < NOT_BLOCKED_S
    assert len(records) == log.spilled
    store.release()
    successor, _ = make_log(store)
    successor.start()
    assert successor.flush(PATIENCE_S)
    assert len(records) == store.count()
    assert records == [store.inner.get(record.transaction_id) for record in records]


def test_appends_after_close_go_to_disk(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """A record that arrives after close() is not dropped: it waits on disk for a next run."""
    log, _ = make_log(store)
    log.start()
    log.close()
    late = make_record(1)
    log.append(late)
    assert 1 == log.spilled
    successor, _ = make_log(store)
    successor.start()
    assert successor.flush(PATIENCE_S)
    assert late == store.inner.get(late.transaction_id)


def test_a_torn_last_line_is_skipped_and_the_rest_written(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]], spill_dir: Path
) -> None:
    """A line cut short by a crash mid-write is skipped; the file's whole lines are written."""
    log, _ = make_log(store)
    records = [make_record(number) for number in range(12)]
    for record in records:
        log.append(record)
    log.close()  # never started: everything goes to disk
    [path] = spill_dir.glob("*.jsonl")
    with path.open("ab") as file:
        file.write(b'{"kind": "decision", "rec')
    successor, _ = make_log(store)
    successor.start()
    assert successor.flush(PATIENCE_S)
    assert len(records) == store.count()
    assert not path.exists()


def test_a_spill_file_another_process_holds_is_left_alone(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]], spill_dir: Path
) -> None:
    """A file locked by another writer (a live process sharing the folder) is not replayed."""
    log, _ = make_log(store)
    for number in range(4):
        log.append(make_record(number))
    log.close()
    [path] = spill_dir.glob("*.jsonl")
    with path.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        successor, _ = make_log(store)
        successor.start()
        assert successor.flush(PATIENCE_S)
        assert 0 == store.count()
        assert path.exists()


def test_a_failing_callback_does_not_break_append(
    store: FaultyStore, make_log: Callable[..., tuple[BufferedDecisionLog, Calls]]
) -> None:
    """A metric callback that raises is logged; the record is still accepted and written."""

    def broken(_: int) -> None:
        raise RuntimeError("metrics backend gone")

    log, _ = make_log(store, on_depth=broken)
    log.start()
    record = make_record(1)
    log.append(record)
    assert log.flush(PATIENCE_S)
    assert record == store.inner.get(record.transaction_id)


def test_postgres_outage_mid_run_loses_nothing(
    make_log: Callable[..., tuple[BufferedDecisionLog, Calls]],
) -> None:
    """PostgreSQL cut off while 2,000 decisions arrive: once back, all 2,000 are stored."""
    appended = 2_000
    with postgres_schema_url() as url:
        target = make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            store = SqlDecisionStore(proxy.url_for(url))
            log, calls = make_log(store, buffer_size=500, batch_size=100)
            log.start()
            proxy.cut()
            for number in range(appended):
                log.append(make_record(number))
            assert calls.error_seen.wait(PATIENCE_S)
            assert 0 < log.spilled
            proxy.restore()
            assert log.flush(30.0)
            assert appended == store.count()
            log.close()
            store.close()
