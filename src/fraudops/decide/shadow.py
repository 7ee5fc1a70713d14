"""The shadow challenger: a second model scoring live traffic, logged and never acted on.

The champion decides; only then is the transaction handed to :class:`ShadowScorer`, which
scores the challenger on the same features on a thread of its own and writes
``(transaction_id, model_version, score, latency_ms, scored_at)`` to the ``shadow_scores``
table in the decision log's database. Handing over is one ``put_nowait`` on a bounded
queue: when the queue is full the transaction is dropped and counted, so a slow or hung
challenger can cost the champion nothing but a dropped shadow score. A challenger that
raises, or a database that is down, is counted and logged too; none of it reaches the
decision.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from fraudops.clock import Clock, SystemClock
from fraudops.decide import log_schema
from fraudops.decide.scorer import Scorer
from fraudops.errors import ModelError, StoreError
from fraudops.sql import as_utc, create_engine, store_error, utc

__all__ = ["ShadowScore", "ShadowScorer", "read_shadow_scores"]

_log = structlog.get_logger("fraudops.shadow")

_Item = tuple[str, Mapping[str, float | None]]


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """One challenger score of one transaction, as the shadow table keeps it."""

    transaction_id: str
    model_version: str
    score: float
    latency_ms: float
    scored_at: datetime


class ShadowScorer:
    """Scores the challenger after each decision, off the request path, into SQL.

    ``feature_names`` is the order of the features the service serves; the challenger's
    own order is taken from it by name. ``capacity`` bounds the queue; ``batch_size``
    bounds how many scores one database write carries. ``on_scored``, ``on_dropped`` and
    ``on_failed`` are called with a count (for metrics); ``scored``, ``dropped`` and
    ``failed`` hold the totals.
    """

    def __init__(
        self,
        scorer: Scorer,
        feature_names: Sequence[str],
        url: str,
        *,
        capacity: int = 10_000,
        batch_size: int = 200,
        clock: Clock | None = None,
        on_scored: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_failed: Callable[[int], None] | None = None,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("the shadow queue's capacity and batch size must be at least 1")
        self._served = frozenset(feature_names)
        self._check(scorer)
        self.scorer = scorer
        self.url = url
        self.batch_size = batch_size
        self.scored = 0
        self.dropped = 0
        self.failed = 0
        self._clock = clock or SystemClock()
        # None is the worker's signal to stop.
        self._queue: queue.Queue[_Item | None] = queue.Queue(capacity)
        self._engine = create_engine(url, what="decision log")
        insert = sqlite.insert if self._engine.dialect.name == "sqlite" else postgresql.insert
        self._insert = insert(log_schema.shadow_scores).on_conflict_do_nothing()
        self._schema_ready = False
        self._thread: threading.Thread | None = None
        self._on_scored = on_scored or _ignore
        self._on_dropped = on_dropped or _ignore
        self._on_failed = on_failed or _ignore

    @property
    def version(self) -> str:
        """The challenger's version."""
        return self.scorer.version

    def replace_scorer(self, scorer: Scorer) -> Scorer:
        """Shadow ``scorer`` from the next queued transaction on; the scorer it replaces.

        One attribute is swapped, and the worker takes it once per transaction, so every
        shadow score is one model's, under its own version. ModelError if ``scorer`` needs
        features the service does not serve.
        """
        self._check(scorer)
        replaced, self.scorer = self.scorer, scorer
        return replaced

    def _check(self, scorer: Scorer) -> None:
        missing = sorted(set(scorer.feature_names) - self._served)
        if missing:
            raise ModelError(
                f"challenger model {scorer.version} needs features the definition lacks: {missing}"
            )

    @property
    def depth(self) -> int:
        """How many transactions wait to be scored."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fraudops-shadow", daemon=True)
            self._thread.start()

    def submit(self, transaction_id: str, features: Mapping[str, float | None]) -> bool:
        """Hand a decided transaction's features over; False (counted) if the queue is full.

        Never blocks: this runs on the request path, after the decision is made.
        """
        try:
            self._queue.put_nowait((transaction_id, features))
        except queue.Full:
            self.dropped += 1
            self._on_dropped(1)
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Score and write what is queued (up to ``timeout_s``), then stop the worker."""
        thread = self._thread
        if thread is not None:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                _log.warning("shadow.close_queue_full", waiting=self.depth)
            thread.join(timeout_s)
            if thread.is_alive():
                _log.warning("shadow.worker_still_running", waiting=self.depth)
            self._thread = None
        self._engine.dispose()

    # ---------------------------------------------------------------- the worker

    def _run(self) -> None:
        pending: list[dict[str, object]] = []
        while True:
            item = self._queue.get()
            stop = item is None
            if item is not None:
                row = self._score(item)
                if row is not None:
                    pending.append(row)
            if pending and (stop or len(pending) >= self.batch_size or self._queue.empty()):
                self._write(pending)
                pending = []
            if stop:
                return

    def _score(self, item: _Item) -> dict[str, object] | None:
        transaction_id, features = item
        scorer = self.scorer  # once: a replacement takes effect between transactions
        try:
            names = scorer.feature_names
            row = np.array([_value(features.get(name)) for name in names], dtype=np.float64)
            started = time.perf_counter()
            score = float(scorer.score(row))
            latency_ms = (time.perf_counter() - started) * 1000.0
            if not (math.isfinite(score) and 0.0 <= score <= 1.0):
                raise ModelError(f"challenger {scorer.version} scored {score!r}")
        except Exception as exc:  # a challenger's failure must never escape its thread
            self.failed += 1
            self._on_failed(1)
            _log.warning(
                "shadow.score_failed",
                transaction_id=transaction_id,
                model_version=scorer.version,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        return {
            "transaction_id": transaction_id,
            "model_version": scorer.version,
            "score": score,
            "latency_ms": latency_ms,
            "scored_at": self._clock.now().astimezone(UTC),
        }

    def _write(self, rows: list[dict[str, object]]) -> None:
        try:
            if not self._schema_ready:
                log_schema.migrate(self._engine)
                self._schema_ready = True
            with self._engine.begin() as connection:
                connection.execute(self._insert, rows)
        except (SQLAlchemyError, StoreError) as exc:
            # Shadow scores are evidence for a comparison, not decisions: they are dropped,
            # counted and logged rather than buffered against an outage.
            self.failed += len(rows)
            self._on_failed(len(rows))
            if isinstance(exc, SQLAlchemyError):
                exc = store_error("shadow write", exc, what="decision log")
            _log.error(
                "shadow.write_failed", rows=len(rows), model_version=self.version, error=str(exc)
            )
            return
        self.scored += len(rows)
        self._on_scored(len(rows))


def read_shadow_scores(url: str, *, since: datetime | None = None) -> list[ShadowScore]:
    """The shadow scores kept in the database at ``url``, oldest first (none if no table);
    StoreError if the database cannot be read."""
    engine = create_engine(url, what="decision log")
    try:
        scores = log_schema.shadow_scores
        query = sa.select(scores).order_by(scores.c.scored_at, scores.c.transaction_id)
        if since is not None:
            query = query.where(scores.c.scored_at >= utc(since))
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("shadow_scores"):
                return []
            rows = connection.execute(query).mappings().all()
    except SQLAlchemyError as exc:
        raise store_error("read shadow scores", exc, what="decision log") from exc
    finally:
        engine.dispose()
    return [
        ShadowScore(
            transaction_id=row["transaction_id"],
            model_version=row["model_version"],
            score=row["score"],
            latency_ms=row["latency_ms"],
            scored_at=as_utc(row["scored_at"]),
        )
        for row in rows
    ]


def _value(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _ignore(_count: int) -> None:
    return None
