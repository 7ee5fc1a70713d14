"""The decision log's buffer: decisions leave the decision path at once and reach the
database later, in batches, through outages, without being lost.

``append`` puts a record in a bounded in-memory buffer and returns; one background thread
writes the buffer to the :class:`~fraudops.decide.log.DecisionStore` in batches. While the
database is down the thread keeps the records (in order) and retries with capped
exponential backoff; when the buffer is full, further records go to spill files on disk
(JSON lines, one record per line). Once the database answers again the thread writes the
buffer, then replays the spill files oldest first, deleting each only after all of it is
written. A file left by a crash or an earlier run is replayed by the next ``start()``.

Every record is written at least once and the store ignores re-writes by transaction id,
so the database ends with each record exactly once.

Spill files are appended with one ``write`` per record (a process crash loses nothing the
caller was told was accepted) and ``fsync``'d once per ``batch_size`` records (what a
power cut can lose). Each file is ``flock``'d while it is written or replayed, so processes
sharing a spill folder never replay a file another one is still writing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

from fraudops.decide.log import DecisionRecord, DecisionStore, decode_label, encode_label
from fraudops.types import Label

_log = structlog.get_logger("fraudops.decision_log")

_Item = DecisionRecord | Label

_BACKOFF_FIRST_S = 0.05
_BACKOFF_CAP_S = 2.0
# A spill file is deleted only once all of it is written, so a replay that fails half-way
# starts that file again; capping a file's size caps how much an outage makes us redo.
_SPILL_FILE_RECORDS = 50_000


class BufferedDecisionLog:
    """Never blocks the decision path; never loses an accepted decision.

    The callbacks feed metrics: ``on_depth(records waiting in memory)``, ``on_spill(records
    just written to disk)`` (the overflow alarm), ``on_flush_error(exception)`` for each
    failed write, ``on_written(records just stored)``. A callback that raises is logged and
    otherwise ignored, so a broken metric cannot break the decision path.
    """

    def __init__(
        self,
        store: DecisionStore,
        *,
        buffer_size: int,
        batch_size: int,
        flush_interval_s: float,
        spill_dir: Path,
        on_depth: Callable[[int], None] | None = None,
        on_spill: Callable[[int], None] | None = None,
        on_flush_error: Callable[[Exception], None] | None = None,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        if buffer_size < 1 or batch_size < 1 or flush_interval_s <= 0:
            raise ValueError("buffer_size and batch_size must be ≥ 1 and flush_interval_s > 0")
        self.store = store
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.spill_dir = spill_dir
        self._on_depth = on_depth
        self._on_spill = on_spill
        self._on_flush_error = on_flush_error
        self._on_written = on_written
        self._cond = threading.Condition()
        self._buffer: deque[_Item] = deque()
        self._inflight: list[_Item] = []
        # Buffered and in-flight decisions by transaction id, so get() finds them.
        self._index: dict[str, DecisionRecord] = {}
        self._spill = _SpillFiles(spill_dir, fsync_every=batch_size)
        self._thread: threading.Thread | None = None
        self._flush_requested = False
        self._stopping = False
        self._closed = False
        # Set when close() gave up waiting and took the thread's records to disk itself.
        self._abandoned = False

    def start(self) -> None:
        """Take in spill files left by an earlier run, and start the flush thread.

        The thread writes those files to the store first, then carries the buffer.
        """
        with self._cond:
            if self._thread is not None or self._closed:
                raise RuntimeError("a BufferedDecisionLog starts once, before close()")
            self._spill.adopt()
            self._thread = threading.Thread(
                target=self._run, name="decision-log-flush", daemon=True
            )
            self._thread.start()

    def append(self, record: DecisionRecord) -> None:
        """Accept one decision record; O(1), never waits on the database, never raises."""
        self._accept(record)

    def append_label(self, label: Label) -> None:
        """Accept one label, with the same guarantees as :meth:`append`."""
        self._accept(label)

    def get(self, transaction_id: str) -> DecisionRecord | None:
        """The record of one decision: from memory, the spill files, or else the store.

        Raises StoreError if it has to ask the store and the store fails.
        """
        with self._cond:
            record = self._index.get(transaction_id)
            if record is None:
                record = self._spill.find(transaction_id)
        if record is not None:
            return record
        return self.store.get(transaction_id)

    @property
    def depth(self) -> int:
        """Records waiting in memory (not counting spilled ones)."""
        with self._cond:
            return len(self._buffer) + len(self._inflight)

    @property
    def spilled(self) -> int:
        """Records waiting on disk."""
        with self._cond:
            return self._spill.count

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Have the thread write everything now; True if nothing is left waiting in time."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                return self._all_written()
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(self._all_written, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread after it writes what the store takes; spill the rest to disk.

        If the thread cannot finish within ``timeout_s`` (the store hangs), what it holds
        is spilled here instead; a re-write later is harmless. A later ``start()`` of a
        log on the same spill folder writes the spilled records.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        with self._cond:
            spilled = 0
            if thread is None or thread.is_alive():
                self._abandoned = True
                spilled = self._spill_held()
            self._spill.seal()
        if spilled:
            _log.warning("decision_log.close_spilled", records=spilled)
            self._call(self._on_spill, spilled)

    def _accept(self, item: _Item) -> None:
        spilled = False
        failure: Exception | None = None
        try:
            with self._cond:
                if self._closed or len(self._buffer) + len(self._inflight) >= self.buffer_size:
                    try:
                        self._spill.add(item)
                        if self._closed:
                            # Nothing will seal the file later: sync it and free it now.
                            self._spill.seal()
                        spilled = True
                    except Exception as exc:
                        # Over the bound beats losing it: keep it in memory, and say so.
                        failure = exc
                        self._keep(item)
                else:
                    self._keep(item)
                depth = len(self._buffer) + len(self._inflight)
        except Exception as exc:  # append never raises: the decision has been made already
            _log.exception("decision_log.append_failed", transaction_id=item.transaction_id)
            self._call(self._on_flush_error, exc)
            return
        if failure is not None:
            _log.error(
                "decision_log.spill_failed", transaction_id=item.transaction_id, error=str(failure)
            )
            self._call(self._on_flush_error, failure)
        if spilled:
            self._call(self._on_spill, 1)
        self._call(self._on_depth, depth)

    def _keep(self, item: _Item) -> None:
        self._buffer.append(item)
        if isinstance(item, DecisionRecord):
            self._index.setdefault(item.transaction_id, item)
        if len(self._buffer) == self.batch_size:
            self._cond.notify_all()

    def _all_written(self) -> bool:
        return not self._buffer and not self._inflight and self._spill.count == 0

    def _run(self) -> None:
        backoff_s = 0.0
        while True:
            if self._write_all():
                backoff_s = 0.0
            else:
                backoff_s = min(_BACKOFF_CAP_S, max(_BACKOFF_FIRST_S, backoff_s * 2))
            if not self._wait(backoff_s or self.flush_interval_s, backing_off=backoff_s > 0):
                break
        self._finish()

    def _wait(self, timeout_s: float, *, backing_off: bool) -> bool:
        """Sleep until there is work (a full batch, a flush, the timeout); False on close."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._stopping:
                if self._flush_requested:
                    self._flush_requested = False
                    return True
                # While backing off, a full batch is no reason to hammer a failing store.
                if not backing_off and len(self._buffer) >= self.batch_size:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)
            return False

    def _write_all(self) -> bool:
        """Write the buffer, then the spill files; False at the first failure."""
        if not self._write_buffer():
            return False
        with self._cond:
            if self._stopping:
                # Closing: the files are safe on disk and the next start() replays them.
                return True
            paths = self._spill.seal()
        # Fresh records are written between files, so a long replay cannot starve them.
        return all(self._replay(path) and self._write_buffer() for path in paths)

    def _write_buffer(self) -> bool:
        while True:
            with self._cond:
                if self._abandoned or not self._buffer:
                    return True
                count = min(self.batch_size, len(self._buffer))
                self._inflight = [self._buffer.popleft() for _ in range(count)]
                batch = self._inflight
            if not self._write(batch):
                return False

    def _write(self, batch: list[_Item]) -> bool:
        decisions = [item for item in batch if isinstance(item, DecisionRecord)]
        labels = [item for item in batch if isinstance(item, Label)]
        try:
            self.store.write(decisions, labels)
        except Exception as exc:
            with self._cond:
                if not self._abandoned:
                    self._buffer.extendleft(reversed(self._inflight))
                    self._inflight = []
            self._flush_failed(exc)
            return False
        # Reported before the records leave the buffer, so flush() never returns ahead of it.
        self._call(self._on_written, len(batch))
        with self._cond:
            if not self._abandoned:
                for record in decisions:
                    if self._index.get(record.transaction_id) is record:
                        del self._index[record.transaction_id]
                self._inflight = []
            depth = len(self._buffer) + len(self._inflight)
            self._cond.notify_all()
        self._call(self._on_depth, depth)
        return True

    def _replay(self, path: Path) -> bool:
        written = 0
        try:
            with _claim(path) as lines:
                if lines is None:
                    # Gone, or another process is replaying or still writing it.
                    with self._cond:
                        self._spill.forget(path)
                        self._cond.notify_all()
                    return True
                for batch in _batches(_read_items(path, lines), self.batch_size):
                    self.store.write(
                        [item for item in batch if isinstance(item, DecisionRecord)],
                        [item for item in batch if isinstance(item, Label)],
                    )
                    written += len(batch)
                    self._call(self._on_written, len(batch))
                _log.info("decision_log.spill_replayed", file=path.name, records=written)
                with self._cond:
                    path.unlink()
                    self._spill.forget(path)
                    self._cond.notify_all()
        except Exception as exc:
            self._flush_failed(exc)
            return False
        return True

    def _finish(self) -> None:
        """On close: one more try at the buffer, then the rest to disk."""
        self._write_buffer()
        with self._cond:
            if self._abandoned:
                return
            spilled = self._spill_held()
            self._spill.seal()
        if spilled:
            _log.warning("decision_log.close_spilled", records=spilled)
            self._call(self._on_spill, spilled)
        self._call(self._on_depth, 0)

    def _spill_held(self) -> int:
        """Move everything in memory to disk (the lock is held); how many records moved."""
        held = [*self._inflight, *self._buffer]
        self._inflight = []
        self._buffer.clear()
        self._index.clear()
        for position, item in enumerate(held):
            try:
                self._spill.add(item)
            except Exception:
                lost = [lost_item.transaction_id for lost_item in held[position:]]
                _log.exception("decision_log.records_lost", count=len(lost), transaction_ids=lost)
                return position
        return len(held)

    def _flush_failed(self, exc: Exception) -> None:
        _log.warning("decision_log.write_failed", error=str(exc), waiting=self.depth)
        self._call(self._on_flush_error, exc)

    @staticmethod
    def _call(callback: Callable[[Any], None] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:
            _log.exception("decision_log.callback_failed", callback=repr(callback))


class _SpillFiles:
    """The overflow on disk: JSON-lines files in one folder, replayed oldest first.

    Not thread-safe: the log calls it with its lock held (replay reads a file outside the
    lock, but only a sealed one, which nothing writes any more).
    """

    def __init__(self, directory: Path, *, fsync_every: int) -> None:
        self.directory = directory
        self.fsync_every = fsync_every
        self.count = 0
        self._pending: dict[Path, int] = {}  # file → its records, oldest file first
        self._keys: dict[Path, list[str]] = {}  # file → the decisions' transaction ids
        self._where: dict[str, tuple[Path, int]] = {}  # transaction id → (file, offset)
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._unsynced = 0
        self._sequence = 0

    def adopt(self) -> None:
        """Take in the files already in the folder (an earlier run's, or a crash's)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.jsonl")):
            if path in self._pending:
                continue
            try:
                self._index_file(path)
            except OSError as exc:
                _log.error("decision_log.spill_unreadable", file=str(path), error=str(exc))

    def add(self, item: _Item) -> None:
        """Append one record to the open file (opening one if needed)."""
        line = orjson.dumps(_encode_item(item)) + b"\n"
        if self._file is None:
            self._open()
        assert self._file is not None
        assert self._path is not None
        try:
            self._file.write(line)
            self._file.flush()
            if self._unsynced + 1 >= self.fsync_every:
                os.fsync(self._file.fileno())
        except OSError:
            # A half-written line must not run into the next one: start a new file.
            self.seal()
            raise
        self._unsynced = (self._unsynced + 1) % self.fsync_every
        if isinstance(item, DecisionRecord):
            self._note(item.transaction_id, self._path, self._size)
        self._size += len(line)
        self._pending[self._path] += 1
        self.count += 1
        if self._pending[self._path] >= _SPILL_FILE_RECORDS:
            self.seal()

    def seal(self) -> list[Path]:
        """Close the open file (synced) and list every file waiting, oldest first."""
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                _log.error("decision_log.spill_sync_failed", file=str(self._path), error=str(exc))
            finally:
                self._file.close()  # also releases the flock
                self._file = self._path = None
        return list(self._pending)

    def find(self, transaction_id: str) -> DecisionRecord | None:
        """The spilled decision of ``transaction_id``, if one is waiting on disk."""
        where = self._where.get(transaction_id)
        if where is None:
            return None
        path, offset = where
        try:
            with path.open("rb") as file:
                file.seek(offset)
                item = _decode_item(file.readline())
        except (OSError, ValueError, KeyError):
            return None
        return item if isinstance(item, DecisionRecord) else None

    def forget(self, path: Path) -> None:
        """Drop a file from what is waiting (it was written, or is not ours)."""
        self.count -= self._pending.pop(path, 0)
        for key in self._keys.pop(path, ()):
            if self._where.get(key, (None, 0))[0] == path:
                del self._where[key]

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:06d}.jsonl"
        path = self.directory / name
        file = path.open("ab")
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The new name must survive a power cut too, not only the lines in the file.
        folder = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        self._file, self._path, self._size, self._unsynced = file, path, 0, 0
        self._pending[path] = 0

    def _index_file(self, path: Path) -> None:
        records = offset = 0
        with path.open("rb") as file:
            for line in file:
                try:
                    data = orjson.loads(line)
                    if data["kind"] == "decision":
                        self._note(data["record"]["decision"]["transaction_id"], path, offset)
                except (ValueError, KeyError, TypeError):
                    pass  # a torn last line: still counted, and replay reports it
                records += 1
                offset += len(line)
        self._pending[path] = records
        self.count += records

    def _note(self, transaction_id: str, path: Path, offset: int) -> None:
        if transaction_id not in self._where:  # the first record of an id wins, as in the store
            self._where[transaction_id] = (path, offset)
            self._keys.setdefault(path, []).append(transaction_id)


@contextmanager
def _claim(path: Path) -> Iterator[IO[bytes] | None]:
    """The file opened and locked for replay, or None if it is gone or locked elsewhere."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield file


def _read_items(path: Path, lines: IO[bytes]) -> Iterator[_Item]:
    for number, line in enumerate(lines, start=1):
        try:
            yield _decode_item(line)
        except (ValueError, KeyError, TypeError) as exc:
            # Only a crash mid-write tears a line, and such a record was never accepted.
            _log.error("decision_log.spill_line_unreadable", file=path.name, line=number,
                       error=str(exc))  # fmt: skip


def _batches(items: Iterator[_Item], size: int) -> Iterator[list[_Item]]:
    batch: list[_Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _encode_item(item: _Item) -> dict[str, Any]:
    if isinstance(item, DecisionRecord):
        return {"kind": "decision", "record": item.encode()}
    return {"kind": "label", "label": encode_label(item)}


def _decode_item(line: bytes) -> _Item:
    data = orjson.loads(line)
    if data["kind"] == "decision":
        return DecisionRecord.decode(data["record"])
    if data["kind"] == "label":
        return decode_label(data["label"])
    raise ValueError(f"unknown spill record kind {data['kind']!r}")
